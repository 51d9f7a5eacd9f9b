// grpc.health.v1.Health: Check, List and Watch, per
// https://github.com/grpc/grpc/blob/master/doc/health-checking.md.
//
// Kubernetes gRPC probes, Envoy/Istio health checks and grpc_health_probe
// call Check; load balancers that keep a stream open call Watch. The service
// name "" stands for the whole server and starts as SERVING.

import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";

import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.ts";

export type HealthStatus = "SERVING" | "NOT_SERVING";

export interface HealthService {
  /** Register grpc.health.v1.Health on `router`. */
  register(router: ConnectRouter): void;
  /**
   * Set the status of `service` ("" is the server as a whole). A service name
   * becomes known to Check and List the first time it is set; open Watch
   * streams for it receive the change.
   */
  setStatus(service: string, status: HealthStatus): void;
  /**
   * Ends every Watch stream once it has sent the latest status, and new ones
   * after their first answer: a stopping gateway tells load balancers, then
   * lets their streams go instead of holding the process for its whole grace.
   */
  close(): void;
}

/** The gRPC spec caps List at 100 services. */
const LIST_LIMIT = 100;

type Status = (typeof ServingStatus)[HealthStatus] | typeof ServingStatus.SERVICE_UNKNOWN;

export function createHealth(): HealthService {
  const statuses = new Map<string, Status>([["", ServingStatus.SERVING]]);
  const watchers = new Map<string, Set<(status: Status) => void>>();
  const closers = new Set<() => void>();
  let closed = false;

  const current = (service: string): Status => statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;

  return {
    setStatus(service, status) {
      const next = ServingStatus[status];
      if (statuses.get(service) === next) return;
      statuses.set(service, next);
      for (const notify of watchers.get(service) ?? []) notify(next);
    },

    close() {
      closed = true;
      for (const wakeUp of closers) wakeUp();
    },

    register(router) {
      router.service(Health, {
        check(req) {
          const status = statuses.get(req.service);
          if (status === undefined) throw new ConnectError(`unknown service: ${req.service}`, Code.NotFound);
          return { status };
        },

        list() {
          if (statuses.size > LIST_LIMIT) {
            throw new ConnectError(`more than ${LIST_LIMIT} services`, Code.ResourceExhausted);
          }
          return { statuses: Object.fromEntries([...statuses].map(([name, status]) => [name, { status }])) };
        },

        async *watch(req, ctx) {
          const service = req.service;
          const pending: Status[] = [];
          let wake: (() => void) | undefined;
          const notify = (status: Status) => {
            pending.push(status);
            wake?.();
          };
          const onAbort = () => wake?.();
          const onClose = () => wake?.();
          closers.add(onClose);

          let set = watchers.get(service);
          if (!set) watchers.set(service, (set = new Set()));
          set.add(notify);
          ctx.signal.addEventListener("abort", onAbort);
          try {
            // Unknown services get SERVICE_UNKNOWN and the call stays open; a
            // later setStatus for the name is delivered like any other change.
            let last = current(service);
            yield { status: last };
            while (!ctx.signal.aborted) {
              const next = pending.shift();
              if (next === undefined && closed) return;
              if (next === undefined) {
                await new Promise<void>((resolve) => (wake = resolve));
                wake = undefined;
                continue;
              }
              if (next !== last) {
                last = next;
                yield { status: next };
              }
            }
          } finally {
            ctx.signal.removeEventListener("abort", onAbort);
            closers.delete(onClose);
            set.delete(notify);
            if (set.size === 0 && watchers.get(service) === set) watchers.delete(service);
          }
        },
      });
    },
  };
}
