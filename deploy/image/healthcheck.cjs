// The image's HEALTHCHECK: exit 0 when GET /readyz on this container answers 200,
// else 1. Plain Node (no curl, no shell in the image). It asks 127.0.0.1 on
// $PORT (default 8080), or $HOST when the gateway is bound to one address.
"use strict";
const http = require("node:http");

const port = Number(process.env.PORT || 8080);
const bound = process.env.HOST;
const host = !bound || bound === "0.0.0.0" || bound === "::" ? "127.0.0.1" : bound;
const req = http.get({ host, port, path: "/readyz", timeout: 2000 }, (res) => {
  res.resume();
  process.exitCode = res.statusCode === 200 ? 0 : 1;
});
req.on("timeout", () => req.destroy(new Error("timed out")));
req.on("error", (err) => {
  process.stderr.write(`healthcheck: ${err.message}\n`);
  process.exitCode = 1;
});
