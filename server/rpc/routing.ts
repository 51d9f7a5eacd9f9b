import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { CircuitState, GetHealthResponseSchema, RoutingService } from "../../gen/switchyard/v1/routing_pb.ts";
import type { BreakerState } from "../routing/breaker.ts";
import type { HealthRegistry } from "../routing/health.ts";
import type { ServiceOptions } from "./admin.ts";
import { rpcCall } from "./context.ts";

const STATE: Record<BreakerState, CircuitState> = {
  closed: CircuitState.CLOSED,
  half_open: CircuitState.HALF_OPEN,
  open: CircuitState.OPEN,
};

/** switchyard.v1.RoutingService: provider health as routing sees it (also plain JSON over HTTP). */
export function registerRoutingService(router: ConnectRouter, health: HealthRegistry, options: ServiceOptions): void {
  router.service(RoutingService, {
    getHealth() {
      return rpcCall(async () => {
        return create(GetHealthResponseSchema, {
          providers: health.snapshot().map((p) => ({
            provider: p.provider,
            keys: p.keys.map((k) => ({ index: k.index, state: STATE[k.state], inFlight: Math.max(0, k.inFlight), coolingUntilMs: BigInt(k.coolingUntil) })),
            targets: p.targets.map((t) => ({ model: t.model, state: STATE[t.state] })),
          })),
        });
      });
    },
  }, options);
}
