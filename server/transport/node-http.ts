import type { connectNodeAdapter } from "@connectrpc/connect-node";

/**
 * The request/response types of connect-node's handler, which serve both
 * node:http (HTTP/1.1) and node:http2 (h2c) with write() and writeHead()
 * made compatible. connect-node does not export them by name.
 */
export type NodeHandler = ReturnType<typeof connectNodeAdapter>;
export type NodeRequest = Parameters<NodeHandler>[0];
export type NodeResponse = Parameters<NodeHandler>[1];
