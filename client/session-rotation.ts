import { connectivityState, type Channel } from "@grpc/grpc-js";

/**
 * Ends `session`'s current stream whenever the channel leaves READY
 * (e.g. the server asked the connection to go: GOAWAY on
 * --max-connection-age, or a restart), so that later calls go on a new
 * stream over the new connection instead of one the server is about to cut.
 * Calls in flight on the old stream keep it until they are answered. Stops
 * once the channel is shut down; holds no timer.
 */
export function rotateOnConnectionChange(channel: Pick<Channel, "getConnectivityState" | "watchConnectivityState">, session: { rotate(): void }): void {
  const watch = () => {
    try {
      const state = channel.getConnectivityState(false);
      if (state === connectivityState.SHUTDOWN) return;
      channel.watchConnectivityState(state, Infinity, (error) => {
        if (error) return;
        if (state === connectivityState.READY) session.rotate(); // the connection the stream is on is going
        watch();
      });
    } catch {
      // The channel was shut down meanwhile: nothing left to watch.
    }
  };
  watch();
}
