import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Where the master key comes from: the environment, or the generated file. */
export interface MasterSecret {
  secret: string;
  origin: "SWITCHYARD_MASTER_KEY" | "master.key";
}

/**
 * The secret that provider API keys made through the admin API are
 * encrypted under: SWITCHYARD_MASTER_KEY when set. When it is not, a random
 * key is generated once into `<dataDir>/master.key` (mode 0600) and used from
 * then on: a first run works without any setup, and the keys are still not
 * in the database file in clear (a copied or backed-up admin.db alone reveals
 * nothing). Operators who keep the data directory on shared storage should
 * set the variable instead, from their secret manager.
 *
 * `create: false` only reads (start-up with nothing to decrypt never writes
 * a file); it returns undefined when neither source exists.
 */
export function loadMasterSecret(dataDir: string, create: boolean, env: NodeJS.ProcessEnv = process.env): MasterSecret | undefined {
  const fromEnv = env["SWITCHYARD_MASTER_KEY"];
  if (fromEnv !== undefined && fromEnv !== "") {
    if (fromEnv.length < 16) throw new Error("SWITCHYARD_MASTER_KEY must be at least 16 characters (e.g. openssl rand -base64 32)");
    return { secret: fromEnv, origin: "SWITCHYARD_MASTER_KEY" };
  }
  const file = join(dataDir, "master.key");
  try {
    return { secret: readFileSync(file, "utf8").trim(), origin: "master.key" };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  if (!create) return undefined;
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  // "wx": never overwrite a key another start wrote meanwhile (that would orphan its ciphertexts).
  let fd: number;
  try {
    fd = openSync(file, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return { secret: readFileSync(file, "utf8").trim(), origin: "master.key" };
    throw err;
  }
  try {
    writeSync(fd, `${secret}\n`);
  } finally {
    closeSync(fd);
  }
  return { secret, origin: "master.key" };
}
