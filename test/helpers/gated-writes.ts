import { FakeDurableTier } from "./fake-durable-tier.js";

/** A durable tier whose writes wait for `writeGate` while it is set. */
export class GatedWrites extends FakeDurableTier {
  writeGate: Promise<void> | undefined;

  override async setMany(namespace: string, writes: Parameters<FakeDurableTier["setMany"]>[1]) {
    await this.writeGate;
    return super.setMany(namespace, writes);
  }

  /** Holds every write from now until the returned function is called. */
  hold(): () => void {
    let open!: () => void;
    this.writeGate = new Promise<void>((resolve) => (open = resolve));
    return () => {
      this.writeGate = undefined;
      open();
    };
  }
}
