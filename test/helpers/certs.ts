import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./test-server.js";

/** PEM files made by {@link generateCerts}: the contents, and where they are on disk. */
export interface TestCerts {
  /** The CA that signs the server and client certificates. */
  ca: Buffer;
  /** Certificate for 127.0.0.1 and localhost (subjectAltName), signed by `ca`. */
  serverCert: Buffer;
  serverKey: Buffer;
  /** Client certificate (clientAuth), signed by `ca`. */
  clientCert: Buffer;
  clientKey: Buffer;
  /** A second, unrelated CA. */
  otherCa: Buffer;
  /** A client certificate signed by `otherCa`. */
  otherClientCert: Buffer;
  otherClientKey: Buffer;
  /** Path of one of the files above, e.g. `path("serverCert")`. */
  path(name: Exclude<keyof TestCerts, "path" | "remove">): string;
  /** Deletes the files. */
  remove(): void;
}

const FILES = {
  ca: "ca.crt",
  serverCert: "server.crt",
  serverKey: "server.key",
  clientCert: "client.crt",
  clientKey: "client.key",
  otherCa: "other-ca.crt",
  otherClientCert: "other-client.crt",
  otherClientKey: "other-client.key",
} as const;

const CA_CONFIG = `[req]
distinguished_name = dn
x509_extensions = v3_ca
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`;

/**
 * Makes a throw-away PKI with openssl in a temporary directory: a CA, a
 * server certificate for 127.0.0.1/localhost, a client certificate, and a
 * second CA with a client certificate of its own. EC P-256 keys, valid for
 * two days.
 */
export function generateCerts(): TestCerts {
  const dir = tempDir("tiercache-certs-");
  const file = (name: string) => join(dir.path, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir.path, stdio: ["ignore", "ignore", "pipe"] });
  writeFileSync(file("ca.cnf"), CA_CONFIG);
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

  const makeCa = (name: string, cn: string) =>
    openssl("req", "-x509", ...newKey, "-config", "ca.cnf", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${cn}`);
  const makeLeaf = (name: string, ca: string, cn: string, extensions: string) => {
    writeFileSync(file(`${name}.ext`), `basicConstraints = CA:FALSE\n${extensions}\n`);
    openssl("req", "-new", ...newKey, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`);
    openssl("x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-set_serial", `0x${Date.now().toString(16)}${name.length}`,
      "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`);
  };

  makeCa("ca", "tiercache test CA");
  makeCa("other-ca", "unrelated test CA");
  makeLeaf("server", "ca", "localhost", "subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth");
  makeLeaf("client", "ca", "tiercache test client", "extendedKeyUsage = clientAuth");
  makeLeaf("other-client", "other-ca", "stranger", "extendedKeyUsage = clientAuth");

  const read = (name: keyof typeof FILES) => readFileSync(file(FILES[name]));
  return {
    ca: read("ca"),
    serverCert: read("serverCert"),
    serverKey: read("serverKey"),
    clientCert: read("clientCert"),
    clientKey: read("clientKey"),
    otherCa: read("otherCa"),
    otherClientCert: read("otherClientCert"),
    otherClientKey: read("otherClientKey"),
    path: (name) => file(FILES[name]),
    remove: dir.remove,
  };
}
