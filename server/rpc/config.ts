import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { ConfigService } from "../../gen/switchyard/v1/config_pb.ts";
import { redactConfig } from "../config/fields.ts";
import { ConfigError } from "../config/load.ts";
import type { ConfigReloader } from "../config/reload.ts";
import { asAdmin, type ServiceOptions } from "./admin.ts";

/**
 * switchyard.v1.ConfigService: the live configuration (secrets redacted) and
 * a reload on demand. Authorized and audited by the permission table
 * (server/admin/access.ts); this file only maps messages.
 */
export function registerConfigService(router: ConnectRouter, reloader: ConfigReloader, options: ServiceOptions): void {
  router.service(ConfigService, {
    getConfig: (_req, ctx) =>
      asAdmin(ctx, async () => {
        const s = reloader.current;
        return {
          configJson: JSON.stringify(redactConfig(s.config)),
          file: s.file ?? "",
          loadedAtMs: BigInt(s.loadedAtMs),
          restartPending: [...s.restartPending],
          lastError: s.lastError ?? "",
          lastErrorAtMs: BigInt(s.lastErrorAtMs),
        };
      }),
    async reloadConfig(_req, ctx) {
      // A refused file is not the caller's mistake nor an internal one: FAILED_PRECONDITION with the problem.
      const r = await asAdmin(ctx, () => reloader.reload("rpc").then(
        (done) => ({ done }),
        (err: unknown) => {
          if (err instanceof ConfigError) return { refused: err.message };
          throw err;
        },
      ));
      if ("refused" in r) throw new ConnectError(r.refused, Code.FailedPrecondition);
      return {
        changed: r.done.changed,
        restartPending: r.done.restartPending,
        loadedAtMs: BigInt(r.done.state.loadedAtMs),
        beforeJson: JSON.stringify(r.done.before),
        afterJson: JSON.stringify(r.done.after),
      };
    },
  }, options);
}
