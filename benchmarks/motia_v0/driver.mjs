// Drives Motia v0's Redis state adapter for the Python harness (benchmarks/workloads.py).
// argv[2]: JSON {url, prefix, workload: "set"|"get"|"getGroup"|"items", group, items, ops,
// valueBytes, matchEvery}. The group is preloaded with `items` values; then every line read on
// stdin runs one round and answers one JSON line {ops, seconds, latencies_ns}. Values are built
// exactly as benchmarks/measure.py builds them (with matchEvery, item i's status is "match"
// when i % matchEvery == 0, as benchmarks/workloads.py's query suite builds them), so both
// sides move the same bytes. "items": one adapter.items() with the filter status eq "match"
// per round.
import { createInterface } from "node:readline";
import { RedisStateAdapter } from "@motiadev/adapter-redis-state";

const p = JSON.parse(process.argv[2]);

function makeValue(i, size) {
  const status = p.matchEvery && i % p.matchEvery === 0 ? "match" : "pending";
  const base = { id: i, status, payload: "" };
  const pad = Math.max(0, size - JSON.stringify(base).length);
  return { ...base, payload: "x".repeat(pad) };
}

const adapter = new RedisStateAdapter({ url: p.url }, { keyPrefix: p.prefix });
await adapter.ensureConnected();

const batch = [];
for (let i = 0; i < p.items; i++) {
  batch.push(adapter.set(p.group, `k${i}`, makeValue(i, p.valueBytes)));
  if (batch.length === 1000) await Promise.all(batch.splice(0));
}
await Promise.all(batch);

async function round() {
  const latencies = [];
  const start = process.hrtime.bigint();
  let ops = p.ops;
  if (p.workload === "getGroup") {
    const values = await adapter.getGroup(p.group);
    if (values.length !== p.items) throw new Error(`getGroup returned ${values.length} items`);
    ops = p.items;
  } else if (p.workload === "items") {
    const filter = [{ valueKey: "status", operation: "eq", value: "match" }];
    const found = await adapter.items({ groupId: p.group, filter });
    const want = Math.ceil(p.items / p.matchEvery);
    if (found.length !== want) throw new Error(`items returned ${found.length}, not ${want}`);
    ops = 1;
    latencies.push(Number(process.hrtime.bigint() - start));
  } else {
    for (let i = 0; i < p.ops; i++) {
      const key = `k${i % p.items}`;
      const t0 = process.hrtime.bigint();
      if (p.workload === "set") await adapter.set(p.group, key, makeValue(i % p.items, p.valueBytes));
      else if ((await adapter.get(p.group, key)) === null) throw new Error(`missing ${key}`);
      latencies.push(Number(process.hrtime.bigint() - t0));
    }
  }
  return { ops, seconds: Number(process.hrtime.bigint() - start) / 1e9, latencies_ns: latencies };
}

console.log(JSON.stringify({ ready: true }));
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "quit") break;
  console.log(JSON.stringify(await round()));
}
await adapter.clear(p.group);
await adapter.cleanup();
