import type { ConnectRouter } from "@connectrpc/connect";
import { AuditService, type AuditEventSchema } from "../../gen/switchyard/v1/audit_pb.ts";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AuditEntry, AuditLog } from "../admin/audit.ts";
import { invalid } from "../errors/errors.ts";
import { rpcCall } from "./context.ts";

/** Lines per ExportAudit message: big enough to be cheap, small enough to stream. */
const EXPORT_BATCH = 500;

/** switchyard.v1.AuditService over the audit log (server/admin/audit.ts). */
export function registerAuditService(router: ConnectRouter, audit: AuditLog, options: Parameters<ConnectRouter["service"]>[2]): void {
  router.service(
    AuditService,
    {
      listAuditEvents: (req) =>
        rpcCall(async () => {
          if (req.pageSize > 1000) throw invalid("page_size: at most 1000", "page_size");
          const size = req.pageSize || 100;
          let before: number | undefined;
          if (req.pageToken) {
            before = Number(req.pageToken);
            if (!Number.isSafeInteger(before) || before < 1) throw invalid("page_token: not a token from this API", "page_token");
          }
          const filter = { startTimeMs: Number(req.startTimeMs), endTimeMs: Number(req.endTimeMs), actorId: req.actorId, action: req.action, target: req.target };
          const rows = await audit.list(filter, size + 1, before);
          const page = rows.slice(0, size);
          return { events: page.map(eventOut), nextPageToken: rows.length > size ? String(page[page.length - 1]!.seq) : "" };
        }),
      verifyAudit: () =>
        rpcCall(async () => {
          const v = await audit.verify();
          return { ok: v.ok, checked: BigInt(v.checked), firstBadSeq: BigInt(v.firstBadSeq ?? 0), problem: v.problem ?? "", headSeq: BigInt(v.headSeq), headHash: v.headHash };
        }),
      async *exportAudit(req) {
        const enc = new TextEncoder();
        let lines: string[] = [];
        for await (const e of audit.entries({ startTimeMs: Number(req.startTimeMs), endTimeMs: Number(req.endTimeMs) })) {
          lines.push(JSON.stringify(e) + "\n");
          if (lines.length === EXPORT_BATCH) {
            yield { jsonl: enc.encode(lines.join("")) };
            lines = [];
          }
        }
        if (lines.length > 0) yield { jsonl: enc.encode(lines.join("")) };
      },
    },
    options,
  );
}

function eventOut(e: AuditEntry): MessageInitShape<typeof AuditEventSchema> {
  return {
    seq: BigInt(e.seq),
    timeMs: BigInt(e.timeMs),
    actorId: e.actorId,
    actorLabel: e.actorLabel,
    action: e.action,
    target: e.target,
    beforeJson: e.beforeJson,
    afterJson: e.afterJson,
    sourceIp: e.sourceIp,
    requestId: e.requestId,
    outcome: e.outcome,
    prevHash: e.prevHash,
    hash: e.hash,
  };
}
