import type { NodeRequest, NodeResponse } from "./node-http.ts";

/**
 * gRPC clients that call a method the server does not have expect a
 * "trailers-only" answer with grpc-status 12 (UNIMPLEMENTED); a plain HTTP
 * 404 makes grpc-go report "server closed the stream without sending
 * trailers" and stops grpcurl's reflection fallback.
 */
export function isGrpcRequest(req: NodeRequest): boolean {
  return (req.headers["content-type"] ?? "").startsWith("application/grpc");
}

export function grpcUnimplemented(req: NodeRequest, res: NodeResponse): void {
  const contentType = req.headers["content-type"] ?? "application/grpc";
  res.writeHead(200, {
    "content-type": contentType,
    "grpc-status": "12",
    "grpc-message": encodeURIComponent(`unknown method ${req.url ?? ""}`),
  });
  res.end();
  req.resume();
}
