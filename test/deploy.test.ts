import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { loadConfig } from "../server/config/load.ts";
import type { Config } from "../server/config/schema.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, chat, type CreatedKey } from "./support/admin.ts";
import { startFileGateway, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { startPostgres, type RunningPostgres } from "./support/postgres.ts";
import { freePort, startRedis, type RunningRedis } from "./support/redis.ts";

/**
 * deploy/: the compose stack and the Kubernetes manifests, checked by the
 * libraries and tools they are run with, offline:
 * - compose.yaml: compose-go (what `docker compose` loads files with), via deploy/validate;
 * - Kubernetes: kustomize (krusty) builds deploy/k8s, then kubernetes-validate checks every
 *   object strictly against the API schemas of the oldest and newest Kubernetes we support;
 * - Prometheus: promtool (check config, check rules, test rules);
 * - Grafana: the dashboard decoded strictly against Grafana's schema (grafana-foundation-sdk),
 *   its queries parsed by promtool and their metric names found in a real gateway's /metrics;
 * - HAProxy: haproxy -c, then the stack itself without Docker: three gateway processes on
 *   deploy/config/switchyard.yaml with a real Redis and PostgreSQL, behind HAProxy on
 *   deploy/haproxy/haproxy.cfg (addresses rewritten to loopback).
 * Plus the facts that tie the files together: ports, probe paths, grace periods, secret
 * and variable names, and each configuration file passing the gateway's own validation.
 * Each validator is also shown rejecting a broken file.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DEPLOY = join(ROOT, "deploy");
const OLDEST_K8S = "1.27";
const NEWEST_K8S = "1.37";

const ADMIN_KEY = "deploy-test-admin-key-0123456789";
const MASTER_KEY = "deploy-test-master-key-0123456789";
/** deploy/.env as an operator fills it in. */
const FILLED_ENV = {
  SWITCHYARD_ADMIN_KEY: ADMIN_KEY,
  SWITCHYARD_MASTER_KEY: MASTER_KEY,
  POSTGRES_PASSWORD: "deploy-test-postgres-password",
  OPENAI_API_KEY: "sk-test",
  GRAFANA_ADMIN_PASSWORD: "deploy-test-grafana-password",
};

let work: string;
let validator: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Run {
  const r = spawnSync(cmd, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, encoding: "utf8", timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd} could not run: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Fails with the install step when a tool .ci/run installs is missing. */
function need(cmd: string, install: string): void {
  if (run("sh", ["-c", `command -v ${cmd}`]).code !== 0) throw new Error(`${cmd} is not installed: ${install}`);
}

const read = (...path: string[]): string => readFileSync(join(DEPLOY, ...path), "utf8");
const yamlDocs = (text: string): any[] => parseAllDocuments(text).map((d) => {
  if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join("\n"));
  return d.toJS();
}).filter((d) => d !== null);

function envFile(values: Record<string, string>): string {
  const file = join(mkdtempSync(join(work, "env-")), "test.env");
  writeFileSync(file, Object.entries(values).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
  return file;
}

/** Every environment variable name the gateway's code reads ("NAME" literals in server/). */
function gatewayEnvNames(): Set<string> {
  const names = new Set<string>();
  for (const f of readdirSync(join(ROOT, "server"), { recursive: true, encoding: "utf8" })) {
    if (!f.endsWith(".ts")) continue;
    for (const m of readFileSync(join(ROOT, "server", f), "utf8").matchAll(/["'`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)["'`]/g)) names.add(m[1]!);
  }
  return names;
}
/** Read by Node.js itself, not the gateway. */
const NODE_ENV_NAMES = new Set(["NODE_OPTIONS"]);

/** `${NAME}` references in a gateway configuration file (expanded from the environment when it is read), comments left out. */
const configRefs = (text: string): string[] => [...new Set([...stringify(parse(text)).matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!))];

/** Loads a configuration file as `switchyard start --config` does, with this environment only. */
async function gatewayConfig(text: string, env: Record<string, string>): Promise<Config> {
  const file = join(mkdtempSync(join(work, "config-")), "config.yaml");
  writeFileSync(file, text);
  return loadConfig({ file, env });
}

/** `switchyard config check FILE`, as an operator runs it, with this environment only. */
function configCheck(text: string, env: Record<string, string>): Run {
  const file = join(mkdtempSync(join(work, "check-")), "config.yaml");
  writeFileSync(file, text);
  return run(process.execPath, ["server/cli.ts", "config", "check", file], { env: { PATH: process.env["PATH"], ...env } });
}

/** "45s", "1m30s" (compose durations) in milliseconds. */
function durationMs(s: string): number {
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  return ms;
}

/** Metric names a real gateway exports (histograms as their _bucket, _sum and _count series). */
let exported: Set<string>;

/** The series names a /metrics body declares (# TYPE lines), samples or not yet. */
function declaredMetrics(body: string): Set<string> {
  const names = new Set<string>();
  for (const m of body.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    else if (type === "summary") for (const s of ["", "_sum", "_count"]) names.add(name + s);
    else names.add(name);
  }
  return names;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sy-deploy-"));
  need("go", "the Go toolchain (go.dev), as on every machine of this kind");
  need("promtool", "apt-get install prometheus");
  need("haproxy", "apt-get install haproxy");
  if (run("python3", ["-m", "kubernetes_validate", "--version"]).code !== 0) throw new Error("kubernetes-validate is not installed: python3 -m pip install kubernetes-validate");
  // The validator's modules come from the Go module proxy on the first build, then from the cache.
  validator = join(work, "validate");
  const built = run("go", ["build", "-o", validator, "."], { cwd: join(DEPLOY, "validate"), timeoutMs: 900_000 });
  if (built.code !== 0) throw new Error(`building deploy/validate failed:\n${built.stderr}`);

  const gw = await startTestGateway({});
  try {
    exported = declaredMetrics(await (await fetch(`${gw.url}/metrics`)).text());
  } finally {
    await gw.close();
  }
}, 900_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Metric names a PromQL expression uses (the gateway's and the Node.js process's). */
const metricNames = (expr: string): string[] => [...new Set(expr.match(/\b(?:switchyard|process|nodejs)_[a-z0-9_]+\b/g) ?? [])];

// ---------------------------------------------------------------------------------------------
// compose

function composeProject(env: string | undefined, file = join(DEPLOY, "compose.yaml")): Run {
  return run(validator, ["compose", file, ...(env === undefined ? [] : [env])]);
}

describe("compose.yaml", () => {
  let project: any;
  const gateways = ["gateway-1", "gateway-2", "gateway-3"];
  beforeAll(() => {
    const r = composeProject(envFile(FILLED_ENV));
    if (r.code !== 0) throw new Error(r.stderr);
    project = JSON.parse(r.stdout);
  });

  it("loads as docker compose loads it, with deploy/.env filled in", () => {
    expect(Object.keys(project.services).sort()).toEqual(["gateway-1", "gateway-2", "gateway-3", "grafana", "haproxy", "postgres", "prometheus", "redis"]);
  });

  it("refuses to start with .env.example as shipped: every secret is empty and named", () => {
    const r = composeProject(join(DEPLOY, ".env.example"));
    expect(r.code).toBe(1);
    for (const name of Object.keys(FILLED_ENV)) expect(r.stderr).toContain(`required variable ${name} is missing a value`);
    // .env.example lists exactly the variables compose.yaml asks for, none with a value.
    const example = Object.fromEntries(read(".env.example").split("\n").filter((l) => /^[A-Z]/.test(l)).map((l) => l.split("=", 2) as [string, string]));
    const asked = [...new Set([...read("compose.yaml").matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!))].sort();
    expect(Object.keys(example).sort()).toEqual(asked);
    expect(Object.values(example).every((v) => v === "")).toBe(true);
    expect(Object.keys(FILLED_ENV).sort()).toEqual(asked);
  });

  it("rejects an unknown key and a dependency on a service that does not exist", () => {
    const dir = mkdtempSync(join(work, "compose-"));
    const text = read("compose.yaml");
    writeFileSync(join(dir, "typo.yaml"), text.replace("stop_grace_period: 45s", "stop_grace_periods: 45s"));
    const typo = composeProject(envFile(FILLED_ENV), join(dir, "typo.yaml"));
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/stop_grace_periods/);
    writeFileSync(join(dir, "dangling.yaml"), text.replace("    redis:\n      condition: service_healthy", "    valkey:\n      condition: service_healthy"));
    const dangling = composeProject(envFile(FILLED_ENV), join(dir, "dangling.yaml"));
    expect(dangling.code).toBe(1);
    expect(dangling.stderr).toMatch(/valkey/);
  });

  it("builds one image from the root Dockerfile and runs it three times, each on its own host port", () => {
    const hostPorts = new Set<string>();
    for (const name of gateways) {
      const s = project.services[name];
      expect(s.image).toBe("switchyard:latest");
      expect(s.build).toMatchObject({ context: "..", dockerfile: "Dockerfile" });
      expect(s.command).toEqual(["--config", "/etc/switchyard/config.yaml"]);
      expect(s.read_only).toBe(true);
      expect(s.ports).toHaveLength(1);
      expect(s.ports[0].target).toBe(8080);
      hostPorts.add(s.ports[0].published);
      // State under /data, one volume per gateway.
      const data = s.volumes.find((v: any) => v.target === "/data");
      expect(data).toMatchObject({ type: "volume", source: `${name}-data` });
    }
    expect(hostPorts.size).toBe(3);
    expect(existsSync(join(DEPLOY, "..", "Dockerfile")), "the root Dockerfile that compose.yaml builds").toBe(true);
  });

  it("the image is what compose.yaml and the Deployment expect: port 8080, /data, non-root, arguments appended to the gateway", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
    const last = (instruction: string): string | undefined => dockerfile.split("\n").filter((l) => new RegExp(`^${instruction}\\s`, "i").test(l)).at(-1)?.slice(instruction.length).trim();
    expect(dockerfile).toMatch(/^EXPOSE\s+8080\b/m);
    expect(dockerfile).toMatch(/SWITCHYARD_DATA_DIR[= ]\/data\b/);
    expect(dockerfile).toMatch(/HOST[= ]0\.0\.0\.0\b/);
    const user = last("USER");
    expect(user, "USER").toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    // compose's `command` and the Deployment's `args` (--config FILE) replace CMD only: ENTRYPOINT must start the gateway.
    const entrypoint = last("ENTRYPOINT");
    expect(entrypoint, "ENTRYPOINT").toBeDefined();
    const argv = JSON.parse(entrypoint!) as string[];
    // The CLI runs the gateway for anything that is not one of its commands ("start" is optional), so `--config FILE` starts it.
    expect(argv.join(" ")).toMatch(/server\/main\.(ts|js)|switchyard|cli\.c?js/);
  });

  it("mounts the configuration folder (so edits by rename are seen) and every bind-mounted path exists", () => {
    for (const [name, s] of Object.entries<any>(project.services)) {
      for (const v of s.volumes ?? []) {
        if (v.type !== "bind") continue;
        expect(existsSync(resolve(DEPLOY, v.source)), `${name}: ${v.source}`).toBe(true);
        expect(v.read_only, `${name}: ${v.source}`).toBe(true);
      }
    }
    for (const name of gateways) {
      const config = project.services[name].volumes.find((v: any) => v.target === "/etc/switchyard");
      expect(config).toMatchObject({ type: "bind", source: "./config" });
      expect(existsSync(join(DEPLOY, "config", "switchyard.yaml"))).toBe(true);
    }
  });

  it("starts gateways after Redis and PostgreSQL are healthy, and checks readiness on /readyz", () => {
    for (const dep of ["redis", "postgres"]) expect(project.services[dep].healthcheck.test.length).toBeGreaterThan(1);
    for (const name of gateways) {
      const s = project.services[name];
      expect(s.depends_on).toMatchObject({ redis: { condition: "service_healthy" }, postgres: { condition: "service_healthy" } });
      expect(s.healthcheck.test.join(" ")).toContain("http://127.0.0.1:8080/readyz");
    }
  });

  it("gives the gateways only variables they read, pointing at the stack's own Redis and PostgreSQL", () => {
    const known = gatewayEnvNames();
    const configText = read("config", "switchyard.yaml");
    for (const name of gateways) {
      const env = project.services[name].environment as Record<string, string>;
      for (const k of Object.keys(env)) expect(known.has(k) || configRefs(configText).includes(k), k).toBe(true);
      for (const ref of configRefs(configText)) expect(env, `config/switchyard.yaml uses \${${ref}}`).toHaveProperty(ref);
      const redis = new URL(env["SWITCHYARD_REDIS_URL"]!);
      expect(project.services).toHaveProperty(redis.hostname);
      expect(redis.port).toBe("6379");
      const pg = new URL(env["SWITCHYARD_DATABASE_URL"]!);
      const postgres = project.services[pg.hostname].environment;
      expect([pg.username, decodeURIComponent(pg.password), pg.pathname.slice(1), pg.port]).toEqual([postgres.POSTGRES_USER, postgres.POSTGRES_PASSWORD, postgres.POSTGRES_DB, "5432"]);
    }
  });

  it("config/switchyard.yaml passes the gateway's own check with the gateways' environment", async () => {
    const env = project.services["gateway-1"].environment as Record<string, string>;
    const text = read("config", "switchyard.yaml");
    const check = configCheck(text, env);
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
    const config = await gatewayConfig(text, env);
    expect(config.server).toMatchObject({ host: "0.0.0.0", port: 8080 });
    expect(config.governance.store).toBe("redis");
    expect(config.database.url).toBe(env["SWITCHYARD_DATABASE_URL"]);
    // Rate limits counted locally while Redis is down stay within the limit across three gateways.
    expect(config.governance.whenStoreDown.localShare * gateways.length).toBeLessThanOrEqual(1);
  });

  it("stops a gateway only after its drain, and HAProxy notices the drain before the port closes", async () => {
    const config = await gatewayConfig(read("config", "switchyard.yaml"), project.services["gateway-1"].environment);
    const { shutdownGraceMs, drainDelayMs } = config.server;
    for (const name of gateways) {
      // The gateway exits on its own at most 15 s past its grace (server/main.ts's backstop).
      expect(durationMs(project.services[name].stop_grace_period)).toBeGreaterThanOrEqual(shutdownGraceMs + 15_000);
    }
    const cfg = read("haproxy", "haproxy.cfg");
    const inter = durationMs(/default-server check inter (\S+)/.exec(cfg)![1]!);
    const fall = Number(/ fall (\d+)/.exec(cfg)![1]);
    expect(inter * fall).toBeLessThan(drainDelayMs);
    expect(drainDelayMs).toBeLessThan(shutdownGraceMs);
  });

  it("haproxy -c accepts haproxy.cfg (only the compose hostnames do not resolve here) and rejects a misspelt directive", () => {
    const ok = run("haproxy", ["-c", "-f", join(DEPLOY, "haproxy", "haproxy.cfg")]);
    expect(ok.code, ok.stderr).toBe(0);
    const warnings = ok.stderr.split("\n").filter((l) => l.includes("WARNING"));
    for (const w of warnings) expect(w).toMatch(/could not resolve address 'gateway-[123]'/);
    const bad = join(work, "haproxy-typo.cfg");
    writeFileSync(bad, read("haproxy", "haproxy.cfg").replace("balance leastconn", "balance leastcon"));
    const r = run("haproxy", ["-c", "-f", bad]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/leastcon/);
  });

  it("HAProxy, Prometheus and Grafana point at the services that exist", () => {
    const cfg = read("haproxy", "haproxy.cfg");
    for (const backend of ["gateways", "gateways-h2"]) {
      const section = cfg.split(/^backend /m).find((s) => s.startsWith(`${backend}\n`))!;
      expect([...section.matchAll(/^\s+server (\S+) (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`)).toEqual(gateways.map((g) => `${g} ${g}:8080`));
    }
    expect(cfg).toMatch(/http-check send meth GET uri \/readyz/);
    expect(project.services.haproxy.ports.map((p: any) => p.target)).toContain(Number(/frontend gateway\n\s+bind :(\d+)/.exec(cfg)![1]));

    const prometheus = parse(read("prometheus", "prometheus.yml"));
    const job = prometheus.scrape_configs.find((j: any) => j.job_name === "switchyard");
    expect(job.metrics_path).toBe("/metrics");
    expect(job.static_configs.flatMap((c: any) => c.targets)).toEqual(gateways.map((g) => `${g}:8080`));
    const promMount = project.services.prometheus.volumes.find((v: any) => v.source === "./prometheus");
    expect(project.services.prometheus.command).toContain(`--config.file=${promMount.target}/prometheus.yml`);

    const datasource = parse(read("grafana", "provisioning", "datasources", "prometheus.yaml")).datasources[0];
    expect(new URL(datasource.url).hostname).toBe("prometheus");
    expect(project.services.prometheus.ports[0].target).toBe(Number(new URL(datasource.url).port));
    const provider = parse(read("grafana", "provisioning", "dashboards", "switchyard.yaml")).providers[0];
    const mounts = project.services.grafana.volumes;
    expect(mounts.find((v: any) => v.source === "./grafana/dashboards").target).toBe(provider.options.path);
    expect(mounts.find((v: any) => v.source === "./grafana/provisioning").target).toBe("/etc/grafana/provisioning");
    expect(project.services.grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${provider.options.path}/switchyard.json`);
  });
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

function kubernetesValidate(files: string[], version: string): Run {
  return run("python3", ["-m", "kubernetes_validate", "--strict", "--quiet", "-k", version, ...files]);
}

describe("deploy/k8s", () => {
  let built: string;
  let objects: any[];
  const byKind = (kind: string): any[] => objects.filter((o) => o.kind === kind);
  const one = (kind: string): any => {
    const found = byKind(kind);
    expect(found, kind).toHaveLength(1);
    return found[0];
  };
  let deployment: any;
  let pod: any;
  let container: any;
  let configText: string;
  let secretTemplate: any;

  beforeAll(() => {
    const r = run(validator, ["kustomize", join(DEPLOY, "k8s")]);
    if (r.code !== 0) throw new Error(r.stderr);
    built = join(work, "k8s-built.yaml");
    writeFileSync(built, r.stdout);
    objects = yamlDocs(r.stdout);
    deployment = one("Deployment");
    pod = deployment.spec.template.spec;
    container = pod.containers[0];
    configText = one("ConfigMap").data["config.yaml"];
    secretTemplate = yamlDocs(read("k8s", "secret.example.yaml"))[0];
  });

  it("kustomize builds every manifest, and each is valid for the oldest and newest Kubernetes supported", () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Namespace", "PodDisruptionBudget", "Service", "Service", "ServiceAccount"]);
    for (const version of [OLDEST_K8S, NEWEST_K8S]) {
      const r = kubernetesValidate([built, join(DEPLOY, "k8s", "secret.example.yaml")], version);
      expect(r.stdout + r.stderr).toBe("");
      expect(r.code).toBe(0);
    }
  });

  it("kubernetes-validate rejects a misspelt field, a missing required field and a wrong type", () => {
    const cases: [string, (d: any) => void, RegExp][] = [
      ["typo", (d) => (d.spec.template.spec.containers[0].readinessProb = d.spec.template.spec.containers[0].readinessProbe), /'readinessProb' was unexpected/],
      ["required", (d) => delete d.spec.selector, /'selector' is a required property/],
      ["type", (d) => (d.spec.replicas = "three"), /'three' is not of type 'integer'/],
    ];
    for (const [name, breakIt, message] of cases) {
      const d = structuredClone(deployment);
      breakIt(d);
      const file = join(work, `broken-${name}.yaml`);
      writeFileSync(file, stringify(d));
      const r = kubernetesValidate([file], OLDEST_K8S);
      expect(r.code, name).toBe(1);
      expect(r.stdout + r.stderr, name).toMatch(message);
    }
  });

  it("kustomize rejects a kustomization that names a missing file", () => {
    const dir = join(work, "k8s-broken");
    cpSync(join(DEPLOY, "k8s"), dir, { recursive: true });
    writeFileSync(join(dir, "kustomization.yaml"), read("k8s", "kustomization.yaml").replace("  - hpa.yaml", "  - hpa.yaml\n  - ingress.yaml"));
    const r = run(validator, ["kustomize", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ingress\.yaml/);
  });

  it("everything lives in one namespace, the Secret template's too, and the template is not applied by kustomize", () => {
    for (const o of objects) if (o.kind !== "Namespace") expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(one("Namespace").metadata.name);
    expect(secretTemplate.metadata.namespace).toBe(one("Namespace").metadata.name);
    expect(byKind("Secret")).toHaveLength(0);
  });

  it("the Deployment runs three non-root gateways with a read-only root filesystem, resources and spread", () => {
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe(one("ServiceAccount").metadata.name);
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    for (const r of ["requests", "limits"]) expect(Object.keys(container.resources[r]).sort(), r).toEqual(["cpu", "memory"]);
    // Writable places on a read-only root: the data directory and /tmp.
    const data = container.env.find((e: any) => e.name === "SWITCHYARD_DATA_DIR").value;
    for (const path of [data, "/tmp"]) {
      const mount = container.volumeMounts.find((m: any) => m.mountPath === path);
      expect(mount, path).toBeDefined();
      expect(pod.volumes.find((v: any) => v.name === mount.name).emptyDir, path).toBeDefined();
    }
    const labels = deployment.spec.template.metadata.labels;
    expect(pod.topologySpreadConstraints.map((t: any) => t.topologyKey).sort()).toEqual(["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    for (const t of pod.topologySpreadConstraints) expect(labels).toMatchObject(t.labelSelector.matchLabels);
    expect(container.image).toBe("switchyard:latest");
  });

  it("probes: startup and liveness on /healthz, readiness on /readyz, on the port the configuration listens on", async () => {
    const config = await gatewayConfig(configText, realSecret());
    const port = container.ports.find((p: any) => p.name === "http");
    expect(port.containerPort).toBe(config.server.port);
    expect(config.server.host).toBe("0.0.0.0");
    expect(container.startupProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(30);
    const annotations = deployment.spec.template.metadata.annotations;
    expect(annotations["prometheus.io/port"]).toBe(String(port.containerPort));
    expect(annotations["prometheus.io/path"]).toBe("/metrics");
  });

  it("SIGKILL comes only after the drain and the gateway's own backstop", async () => {
    const { shutdownGraceMs, drainDelayMs } = (await gatewayConfig(configText, realSecret())).server;
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThanOrEqual(shutdownGraceMs + 15_000);
    expect(drainDelayMs).toBeGreaterThanOrEqual(3_000);
    expect(drainDelayMs).toBeLessThan(shutdownGraceMs);
  });

  it("the ConfigMap is mounted as a folder (updates reach it) and passed with --config", () => {
    const mount = container.volumeMounts.find((m: any) => pod.volumes.find((v: any) => v.name === m.name).configMap);
    expect(mount.subPath).toBeUndefined();
    expect(mount.readOnly).toBe(true);
    expect(pod.volumes.find((v: any) => v.name === mount.name).configMap.name).toBe(one("ConfigMap").metadata.name);
    expect(container.args).toEqual(["--config", `${mount.mountPath}/config.yaml`]);
  });

  it("the config passes the gateway's check with real secrets, and the Secret template's placeholders are refused", async () => {
    const ok = configCheck(configText, realSecret());
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    const placeholders = configCheck(configText, secretTemplate.stringData);
    expect(placeholders.code).toBe(1);
    expect(placeholders.stderr).toContain("the admin key must be at least 16 characters");
    const config = await gatewayConfig(configText, realSecret());
    expect(config.governance.store).toBe("redis");
    expect(config.governance.whenStoreDown.localShare * one("HorizontalPodAutoscaler").spec.maxReplicas).toBeLessThanOrEqual(1);
  });

  it("the Secret holds what the config and the gateway read, and the pod reads that Secret", () => {
    const keys = Object.keys(secretTemplate.stringData);
    const known = gatewayEnvNames();
    for (const k of keys) expect(known.has(k) || configRefs(configText).includes(k), k).toBe(true);
    for (const ref of configRefs(configText)) expect(keys, `config.yaml uses \${${ref}}`).toContain(ref);
    for (const k of ["SWITCHYARD_ADMIN_KEY", "SWITCHYARD_MASTER_KEY", "SWITCHYARD_REDIS_URL", "SWITCHYARD_DATABASE_URL"]) expect(keys).toContain(k);
    expect(container.envFrom).toEqual([{ secretRef: { name: secretTemplate.metadata.name } }]);
    for (const e of container.env) expect(known.has(e.name) || NODE_ENV_NAMES.has(e.name), e.name).toBe(true);
  });

  it("Services, PodDisruptionBudget and HPA select the Deployment's pods and ports", () => {
    const labels = deployment.spec.template.metadata.labels;
    expect(labels).toMatchObject(deployment.spec.selector.matchLabels);
    for (const svc of byKind("Service")) {
      expect(labels, svc.metadata.name).toMatchObject(svc.spec.selector);
      for (const p of svc.spec.ports) {
        expect(container.ports.map((c: any) => c.name)).toContain(p.targetPort);
        // One port serves HTTP/1.1 and cleartext HTTP/2 (checked against real gateways below).
        expect(p.appProtocol).toBe("kubernetes.io/h2c");
      }
    }
    expect(byKind("Service").find((s) => s.spec.clusterIP === "None")).toBeDefined();
    const pdb = one("PodDisruptionBudget");
    expect(labels).toMatchObject(pdb.spec.selector.matchLabels);
    const hpa = one("HorizontalPodAutoscaler");
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
    expect(hpa.spec.minReplicas).toBe(deployment.spec.replicas);
    expect(pdb.spec.maxUnavailable).toBeLessThan(hpa.spec.minReplicas - 1);
    expect(hpa.spec.metrics[0].resource.name).toBe("cpu");
  });

  /** The Secret as an operator fills it in. */
  function realSecret(): Record<string, string> {
    return {
      ...secretTemplate.stringData,
      SWITCHYARD_ADMIN_KEY: ADMIN_KEY,
      SWITCHYARD_MASTER_KEY: MASTER_KEY,
      SWITCHYARD_REDIS_URL: "redis://:secret@redis.example.internal:6379",
      SWITCHYARD_DATABASE_URL: "postgres://switchyard:secret@postgres.example.internal:5432/switchyard",
      OPENAI_API_KEY: "sk-live-example",
    };
  }
});

// ---------------------------------------------------------------------------------------------
// Prometheus

describe("deploy/prometheus", () => {
  it("promtool accepts the configuration and the rules, and the rules' unit tests pass", () => {
    for (const args of [["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]]) {
      const r = run("promtool", args, { cwd: join(DEPLOY, "prometheus") });
      expect(r.code, `${args.join(" ")}:\n${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it("promtool rejects a rule whose expression does not parse", () => {
    const dir = mkdtempSync(join(work, "rules-"));
    writeFileSync(join(dir, "alerts.yml"), read("prometheus", "alerts.yml").replace("switchyard_governance_store_up == 0", "switchyard_governance_store_up == == 0"));
    const r = run("promtool", ["check", "rules", "alerts.yml"], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/parse error/);
  });

  it("alerts use only metrics the gateway exports, and error outcomes that are real error codes", () => {
    const rules = parse(read("prometheus", "alerts.yml")).groups.flatMap((g: any) => g.rules);
    const used = new Set(rules.flatMap((r: any) => metricNames(r.expr)));
    for (const name of used) expect(exported, `alerts.yml uses ${name}`).toContain(name);
    for (const m of ["switchyard_requests_total", "switchyard_overhead_seconds_bucket", "switchyard_governance_store_up", "switchyard_request_log_dropped_total"]) expect(used).toContain(m);
    const codes = new Set([...readFileSync(join(ROOT, "server", "errors", "errors.ts"), "utf8").matchAll(/^\s+\| "([a-z_]+)"/gm)].map((m) => m[1]));
    const outcomes = /outcome=~"([^"]+)"/.exec(rules.find((r: any) => r.alert === "SwitchyardHighErrorRate").expr)![1]!.split("|");
    for (const o of outcomes) expect(codes, o).toContain(o);
  });
});

// ---------------------------------------------------------------------------------------------
// Grafana

/** Grafana's variables, as Prometheus would see them. */
const GRAFANA_VARS: Record<string, string> = { __rate_interval: "1m", __interval: "1m", __range: "1h", job: ".*", instance: ".*" };
function substitute(expr: string): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (_, name: string) => {
    if (!(name in GRAFANA_VARS)) throw new Error(`unknown Grafana variable $${name} in ${expr}`);
    return GRAFANA_VARS[name]!;
  });
}
/** Every PromQL expression of a dashboard: panel queries and the selectors of label_values variables. */
function dashboardQueries(dashboard: any): string[] {
  const out: string[] = [];
  for (const p of dashboard.panels) for (const t of p.targets ?? []) out.push(t.expr);
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === "string" ? v.query : v.query.query;
    const m = /^label_values\((.+), *\w+\)$/.exec(q);
    if (m) out.push(m[1]!);
  }
  return out;
}
/** promtool check rules on the expressions as recording rules: 0 when every one parses. */
function checkPromQL(exprs: string[]): Run {
  const dir = mkdtempSync(join(work, "promql-"));
  writeFileSync(join(dir, "queries.yml"), stringify({ groups: [{ name: "dashboard", rules: exprs.map((e, i) => ({ record: `dashboard:query_${i}`, expr: substitute(e) })) }] }));
  return run("promtool", ["check", "rules", "queries.yml"], { cwd: dir });
}

describe("deploy/grafana", () => {
  const file = join(DEPLOY, "grafana", "dashboards", "switchyard.json");
  const dashboard = JSON.parse(readFileSync(file, "utf8"));

  it("the dashboard decodes strictly against Grafana's schema, and a wrong field or type is rejected", () => {
    const ok = run(validator, ["grafana", file]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    const broken = structuredClone(dashboard);
    broken.panels[1].options.colourMode = "value";
    broken.panels[2].fieldConfig.defaults.unit = 5;
    const bad = join(work, "broken-dashboard.json");
    writeFileSync(bad, JSON.stringify(broken));
    const r = run(validator, ["grafana", bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unexpected field 'colourMode'");
    expect(r.stderr).toContain("FieldConfig.defaults.unit");
  });

  it("every query parses as PromQL (promtool), and one that does not is caught", () => {
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(30);
    const ok = checkPromQL(queries);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const bad = checkPromQL([...queries, "sum(rate(switchyard_requests_total[$__rate_interval])"]);
    expect(bad.code).toBe(1);
  });

  it("queries use only metrics the gateway exports, and cover what operators watch", () => {
    const used = new Set(dashboardQueries(dashboard).flatMap(metricNames));
    for (const name of used) expect(exported, `the dashboard uses ${name}`).toContain(name);
    for (const m of [
      "switchyard_requests_total", "switchyard_request_duration_seconds_bucket", "switchyard_overhead_seconds_bucket",
      "switchyard_tokens_total", "switchyard_cost_usd_total", "switchyard_cache_requests_total", "switchyard_circuit_state",
      "switchyard_governance_store_up", "switchyard_request_log_dropped_total", "switchyard_inflight_requests",
    ]) expect(used, m).toContain(m);
  });

  it("panels use the provisioned datasource, have unique ids and do not overlap", () => {
    const uid = parse(read("grafana", "provisioning", "datasources", "prometheus.yaml")).datasources[0].uid;
    const ids = new Set<number>();
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      expect(ids.has(p.id), `panel id ${p.id}`).toBe(false);
      ids.add(p.id);
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) for (let j = y; j < y + h; j++) {
        expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
        cells.add(`${i},${j}`);
      }
      if (p.type === "row") continue;
      expect(p.datasource.uid, p.title).toBe(uid);
      for (const t of p.targets) expect(t.datasource.uid, p.title).toBe(uid);
    }
    for (const v of dashboard.templating.list) expect(v.datasource.uid).toBe(uid);
  });
});

// ---------------------------------------------------------------------------------------------
// The stack, without Docker

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<void>;
}

function startProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp, timeoutMs = 30_000): Promise<Proc> {
  const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start:\n${out}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolvePromise({ child, output: () => out, exited });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code}:\n${out}`));
    });
  });
}

async function stopProcess(p: Proc | undefined): Promise<void> {
  if (p === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGKILL");
  await p.exited;
}

/** HAProxy's view of one backend's servers: name -> status (UP, DOWN, MAINT, ...). */
async function haproxyStatus(statsUrl: string, backend: string): Promise<Record<string, string>> {
  const csv = await (await fetch(`${statsUrl}/;csv`)).text();
  const rows = csv.split("\n").map((l) => l.split(","));
  const header = rows[0]!.map((h) => h.replace(/^# /, ""));
  const [px, sv, st] = ["pxname", "svname", "status"].map((n) => header.indexOf(n));
  const out: Record<string, string> = {};
  for (const r of rows.slice(1)) if (r[px!] === backend && r[sv!] !== "BACKEND" && r[sv!] !== "FRONTEND") out[r[sv!]!] = r[st!]!;
  return out;
}

async function until<T>(what: string | (() => string), fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One call over cleartext HTTP/2 with prior knowledge (what gRPC clients and h2c proxies send). */
function h2Request(url: string, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<{ headers: http2.IncomingHttpHeaders; trailers: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolvePromise, reject) => {
    const client = http2.connect(url);
    client.on("error", reject);
    const req = client.request(headers);
    let resHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => (resHeaders = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("error", reject);
    req.on("end", () => {
      client.close();
      resolvePromise({ headers: resHeaders, trailers, body: Buffer.concat(chunks) });
    });
    req.end(body);
  });
}

const grpcHealthCheck = (url: string) =>
  h2Request(url, { ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" }, Buffer.from([0, 0, 0, 0, 0]));

describe("the compose stack without Docker: three gateways on deploy/config, Redis, PostgreSQL, HAProxy on deploy/haproxy", () => {
  let redis: RunningRedis;
  let postgres: RunningPostgres;
  let standin: OpenAIStandin;
  const gateways: { name: string; url: string; proc: Proc }[] = [];
  let haproxy: Proc;
  let lb: string;
  let stats: string;
  let env: Record<string, string>;
  let configFile: string;

  beforeAll(async () => {
    [redis, postgres, standin] = await Promise.all([startRedis(), startPostgres(), startOpenAIStandin()]);
    const database = await postgres.newDatabase();
    // The gateways' environment as compose gives it, with the services' addresses on this machine.
    const project = JSON.parse(composeProject(envFile(FILLED_ENV)).stdout);
    env = { ...project.services["gateway-1"].environment, SWITCHYARD_REDIS_URL: redis.url, SWITCHYARD_DATABASE_URL: database };
    // deploy/config as shipped, but the provider is a local stand-in: nothing leaves this machine.
    const config = parse(read("config", "switchyard.yaml"));
    config.providers[0].baseUrl = standin.url;
    const dir = mkdtempSync(join(work, "stack-"));
    configFile = join(dir, "switchyard.yaml");
    writeFileSync(configFile, stringify(config));

    for (const name of ["gateway-1", "gateway-2", "gateway-3"]) {
      const port = await freePort();
      const proc = await startProcess(process.execPath, ["server/main.ts", "--config", configFile], {
        PATH: process.env["PATH"], ...env, HOST: "127.0.0.1", PORT: String(port), SWITCHYARD_DATA_DIR: join(dir, name),
      }, /"msg":"switchyard listening"/);
      gateways.push({ name, url: `http://127.0.0.1:${port}`, proc });
    }

    const [lbPort, statsPort] = [await freePort(), await freePort()];
    let cfg = read("haproxy", "haproxy.cfg")
      .replace(/^resolvers docker\n(?:[ \t]+.*\n)+/m, "")
      .replaceAll(" resolvers docker", "")
      .replace("bind :8080", `bind 127.0.0.1:${lbPort}`)
      .replace("bind :8404", `bind 127.0.0.1:${statsPort}`);
    for (const g of gateways) cfg = cfg.replaceAll(` ${g.name}:8080`, ` ${new URL(g.url).host}`);
    writeFileSync(join(dir, "haproxy.cfg"), cfg);
    // HAProxy prints nothing once it runs: it is up when its stats page answers.
    const child = spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    haproxy = { child, output: () => out, exited: new Promise<void>((r) => child.once("exit", () => r())) };
    lb = `http://127.0.0.1:${lbPort}`;
    stats = `http://127.0.0.1:${statsPort}`;
    await until(() => `HAProxy to see three ready gateways:\n${haproxy.output()}`, async () => {
      const s = await haproxyStatus(stats, "gateways");
      return Object.values(s).length === 3 && Object.values(s).every((v) => v === "UP") ? s : undefined;
    });
  }, 120_000);

  afterAll(async () => {
    await stopProcess(haproxy);
    for (const g of gateways) await stopProcess(g.proc);
    await Promise.allSettled([redis?.stop(), postgres?.stop(), standin?.close()]);
  });

  it("HAProxy carries REST over HTTP/1.1 and over cleartext HTTP/2, and gRPC to every gateway", async () => {
    const r = await chat(lb, ADMIN_KEY);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.choices[0].message.role).toBe("assistant");

    const ready = await h2Request(lb, { ":method": "GET", ":path": "/readyz" });
    expect(ready.headers[":status"]).toBe(200);

    for (let i = 0; i < 3; i++) {
      const health = await grpcHealthCheck(lb);
      expect(health.headers[":status"]).toBe(200);
      expect(health.trailers["grpc-status"] ?? health.headers["grpc-status"]).toBe("0");
      // HealthCheckResponse { status: SERVING (1) }
      expect([...health.body]).toEqual([0, 0, 0, 0, 2, 8, 1]);
    }
  });

  it("each gateway serves REST over cleartext HTTP/2 too, as the Services' appProtocol kubernetes.io/h2c says", async () => {
    for (const g of gateways) {
      const models = await h2Request(g.url, { ":method": "GET", ":path": "/v1/models", authorization: `Bearer ${ADMIN_KEY}` });
      expect(models.headers[":status"], g.name).toBe(200);
      expect(JSON.parse(models.body.toString()).data.map((m: any) => m.id)).toContain("openai/gpt-4o-mini");
    }
  });

  it("the gateways share governance: a key made on one works on the others, and its limit holds across them", async () => {
    const { secret } = await admin<CreatedKey>(gateways[0]!.url, ADMIN_KEY, "KeyService/CreateKey", { name: "deploy-test", limits: { rpm: 3 } });
    const statuses: number[] = [];
    for (const g of [...gateways, ...gateways]) statuses.push((await chat(g.url, secret)).status);
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toEqual([429, 429, 429]);
  });

  it("every gateway exports the metrics the dashboard and the alerts use", async () => {
    const dashboard = JSON.parse(read("grafana", "dashboards", "switchyard.json"));
    const alerts = parse(read("prometheus", "alerts.yml")).groups.flatMap((g: any) => g.rules.map((r: any) => r.expr as string));
    const used = new Set([...dashboardQueries(dashboard), ...alerts].flatMap(metricNames));
    for (const g of gateways) {
      const declared = declaredMetrics(await (await fetch(`${g.url}/metrics`)).text());
      for (const name of used) expect(declared, `${g.name}: ${name}`).toContain(name);
    }
  });

  it("Prometheus on deploy/prometheus scrapes them, loads the alerts, and every dashboard query evaluates", async () => {
    need("prometheus", "apt-get install prometheus");
    const dir = mkdtempSync(join(work, "prometheus-"));
    const config = parse(read("prometheus", "prometheus.yml"));
    const port = await freePort();
    config.global.scrape_interval = "1s";
    config.global.evaluation_interval = "1s";
    config.global.scrape_timeout = "1s";
    for (const job of config.scrape_configs) {
      for (const sc of job.static_configs) {
        sc.targets = job.job_name === "switchyard" ? gateways.map((g) => new URL(g.url).host) : [`127.0.0.1:${port}`];
      }
    }
    writeFileSync(join(dir, "prometheus.yml"), stringify(config));
    cpSync(join(DEPLOY, "prometheus", "alerts.yml"), join(dir, "alerts.yml"));
    const child = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    const prom = { child, output: () => out, exited: new Promise<void>((r) => child.once("exit", () => r())) };
    try {
      const api = async (path: string): Promise<any> => {
        const body = (await (await fetch(`http://127.0.0.1:${port}/api/v1/${path}`)).json()) as any;
        if (body.status !== "success") throw new Error(`${path}: ${JSON.stringify(body)}`);
        return body.data;
      };
      await until(() => `Prometheus to scrape the three gateways:\n${out}`, async () => {
        const targets = (await api("targets")).activeTargets.filter((t: any) => t.labels.job === "switchyard");
        return targets.length === 3 && targets.every((t: any) => t.health === "up") ? true : undefined;
      }, 30_000);
      // Traffic of every kind the dashboard shows, once Prometheus scrapes: answers, a stream, a caller's error.
      // Spread over several scrapes: a labelled counter appears with its first increment, and a rate needs a later one.
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 3; i++) expect((await chat(lb, ADMIN_KEY)).status).toBe(200);
        const stream = await fetch(`${lb}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_KEY}` },
          body: JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "count to ten" }] }),
        });
        expect(stream.status).toBe(200);
        await stream.text();
        expect((await chat(lb, ADMIN_KEY, { model: "openai/no-such-model" })).status).toBe(404);
        await new Promise((r) => setTimeout(r, 1_200));
      }
      await new Promise((r) => setTimeout(r, 1_200));
      const rules = (await api("rules")).groups.flatMap((g: any) => g.rules);
      expect(rules.map((r: any) => r.name).sort()).toEqual(parse(read("prometheus", "alerts.yml")).groups[0].rules.map((r: any) => r.alert).sort());
      for (const r of rules) expect(r.health, `${r.name}: ${r.lastError}`).toBe("ok");

      const dashboard = JSON.parse(read("grafana", "dashboards", "switchyard.json"));
      // Variables as Grafana fills them: "All" is every value their label_values query finds.
      const vars: Record<string, string> = { __rate_interval: "10s", __range: "5m", __interval: "1s" };
      const fill = (e: string): string => e.replace(/\$\{?(\w+)\}?/g, (_: string, n: string) => {
        if (!(n in vars)) throw new Error(`unknown variable $${n} in ${e}`);
        return vars[n]!;
      });
      for (const v of dashboard.templating.list) {
        const [, selector, label] = /^label_values\((.+), *(\w+)\)$/.exec(v.query.query)!;
        const values: string[] = await api(`label/${label}/values?match[]=${encodeURIComponent(fill(selector!))}`);
        expect(values.length, v.name).toBeGreaterThan(0);
        // Regex-escaped, and the backslash doubled inside PromQL's quoted string, as Grafana does.
        vars[v.name] = `(${values.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\\\$&")).join("|")})`;
      }
      expect(vars["job"]).toBe("(switchyard)");
      const results = new Map<string, any[]>();
      for (const p of dashboard.panels) {
        for (const t of p.targets ?? []) {
          const data = await api(`query?query=${encodeURIComponent(fill(t.expr))}`);
          results.set(`${p.title} ${t.refId}`, data.result);
        }
      }
      const nonEmpty = (key: string): void => expect(results.get(key)?.length ?? 0, key).toBeGreaterThan(0);
      for (const key of ["Gateways up A", "Requests/s A", "Overhead p99 A", "Governance store A", "Requests/s by operation A", "Errors/s by outcome A",
        "Requests/s by provider and model A", "In flight A", "Request duration A", "Request duration B", "Gateway overhead A", "Time to first token A",
        "Provider time p99 A", "Stream chunk gap p99 A", "Tokens/s by kind A", "Circuit breakers A", "Governance store up A", "CPU A", "Memory A", "Memory B", "Event loop lag p99 A"]) nonEmpty(key);
      const value = (key: string): number => Number(results.get(key)![0].value[1]);
      expect(value("Gateways up A")).toBe(3);
      expect(value("Governance store A")).toBe(3);
      expect(value("Requests/s A")).toBeGreaterThan(0);
      expect(results.get("Errors/s by outcome A")!.map((r: any) => r.metric.outcome)).toContain("model_not_found");
      expect(results.get("Tokens/s by kind A")!.map((r: any) => r.metric.kind).sort()).toEqual(expect.arrayContaining(["input", "output"]));
    } finally {
      await stopProcess(prom);
    }
  });

  it("a gateway told to stop leaves HAProxy's rotation before its port closes, and no request fails meanwhile", async () => {
    const victim = gateways[0]!;
    const { drainDelayMs } = (await gatewayConfig(readFileSync(configFile, "utf8"), env)).server;
    const statuses: number[] = [];
    let sending = true;
    const load = (async () => {
      while (sending) {
        const res = await fetch(`${lb}/v1/models`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }).catch(() => undefined);
        statuses.push(res?.status ?? 0);
        await res?.arrayBuffer();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const signalled = Date.now();
    victim.proc.child.kill("SIGTERM");
    await until("HAProxy to take the stopping gateway out", async () => ((await haproxyStatus(stats, "gateways"))[victim.name]?.startsWith("DOWN") ? true : undefined), 15_000);
    const outAfter = Date.now() - signalled;
    await victim.proc.exited;
    await new Promise((r) => setTimeout(r, 500));
    sending = false;
    await load;
    expect(outAfter).toBeLessThan(drainDelayMs);
    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(victim.proc.child.exitCode).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// ConfigMap updates

describe("a ConfigMap update, as the kubelet writes it", () => {
  let redis: RunningRedis;
  let standin: OpenAIStandin;
  let gw: TestGateway;
  let dir: string;
  let generation = 0;

  /** The kubelet's atomic writer: a new timestamped folder, the ..data link swapped by rename, the old folder removed. */
  function publish(content: string): void {
    const old = existsSync(join(dir, "..data")) ? readdirSync(dir).find((f) => f.startsWith("..2")) : undefined;
    const stamp = `..2026_01_01_00_00_00.${String(++generation).padStart(9, "0")}`;
    mkdirSync(join(dir, stamp));
    writeFileSync(join(dir, stamp, "config.yaml"), content);
    symlinkSync(stamp, join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    if (!existsSync(join(dir, "config.yaml"))) symlinkSync("..data/config.yaml", join(dir, "config.yaml"));
    if (old !== undefined) rmSync(join(dir, old), { recursive: true });
  }

  beforeAll(async () => {
    [redis, standin] = await Promise.all([startRedis(), startOpenAIStandin()]);
    dir = mkdtempSync(join(work, "configmap-"));
    const text = yamlDocs(read("k8s", "configmap.yaml"))[0].data["config.yaml"] as string;
    const config = parse(text);
    config.server.host = "127.0.0.1";
    config.server.port = 0;
    config.dataDir = join(dir, "..", "data");
    config.providers[0].baseUrl = standin.url;
    publish(stringify(config));
    gw = await startFileGateway(join(dir, "config.yaml"), {
      env: { SWITCHYARD_REDIS_URL: redis.url, SWITCHYARD_ADMIN_KEY: ADMIN_KEY, OPENAI_API_KEY: "sk-test" },
    });
  });

  afterAll(async () => {
    await gw?.close();
    await Promise.allSettled([redis?.stop(), standin?.close()]);
  });

  it("is picked up by the running gateway, twice", async () => {
    const config = parse(readFileSync(join(dir, "config.yaml"), "utf8"));
    expect((await chat(gw.url, ADMIN_KEY, { model: "fast" })).status).toBe(404);
    publish(stringify({ ...config, aliases: { fast: "openai/gpt-4o-mini" } }));
    await until("the alias to work", async () => ((await chat(gw.url, ADMIN_KEY, { model: "fast" })).status === 200 ? true : undefined), 10_000);
    publish(stringify({ ...config, aliases: { quick: "openai/gpt-4o-mini" } }));
    await until("the second update", async () => ((await chat(gw.url, ADMIN_KEY, { model: "quick" })).status === 200 ? true : undefined), 10_000);
    expect((await chat(gw.url, ADMIN_KEY, { model: "fast" })).status).toBe(404);
  });
});
