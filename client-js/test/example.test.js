// The complete example of PROTOCOL.md section 24 is client-js/examples/chat.js, word
// for word, and it runs against a real node.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";

import { ROOT, nodeForTests } from "./node.js";

const EXAMPLE = join(ROOT, "client-js", "examples", "chat.js");
const MARKER = "<!-- example: client-js/examples/chat.js -->";

const running = nodeForTests();

it("PROTOCOL.md shows the example as it is in the tree", () => {
  const doc = readFileSync(join(ROOT, "docs", "PROTOCOL.md"), "utf8");
  const start = doc.indexOf(MARKER);
  assert.ok(start >= 0, `PROTOCOL.md has no ${MARKER}`);
  const block = doc.slice(start).split("```js\n")[1].split("\n```")[0];
  assert.equal(block + "\n", readFileSync(EXAMPLE, "utf8"));
});

it("the example runs: the push and the read receipt arrive", async () => {
  // Node < 22 has its WebSocket behind a flag; browsers and node >= 22 have it.
  const flags = "WebSocket" in globalThis ? [] : ["--experimental-websocket"];
  const { stdout } = await promisify(execFile)(process.execPath, [...flags, EXAMPLE, running.node.url], {
    cwd: ROOT,
    timeout: 30_000,
  });
  const lines = stdout.trim().split("\n");
  assert.match(lines[0], /^bob received seq 1 of si_alice-\w+_bob-\w+: hello bob$/);
  assert.equal(lines[1], "alice sees bob has read up to seq 1");
});
