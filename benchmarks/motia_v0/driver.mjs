// Runs one workload on Motia v0's Redis adapter and prints its timings as JSON.
// Usage: node driver.mjs '{"url": "...", "workload": "set|get|getGroup", "group": "...",
//                          "items": N, "ops": N, "valueBytes": N, "rounds": N, "warmup": N}'
// Values are built exactly as benchmarks/measure.py builds them, so both sides move the same bytes.
import { RedisStateAdapter } from "@motiadev/adapter-redis-state";

const p = JSON.parse(process.argv[2]);

function makeValue(i, size) {
  const base = { id: i, status: "pending", payload: "" };
  const pad = Math.max(0, size - JSON.stringify(base).length);
  return { ...base, payload: "x".repeat(pad) };
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const adapter = new RedisStateAdapter({ url: p.url }, { keyPrefix: p.prefix });
await adapter.ensureConnected();

async function preload() {
  const batch = [];
  for (let i = 0; i < p.items; i++) {
    batch.push(adapter.set(p.group, `k${i}`, makeValue(i, p.valueBytes)));
    if (batch.length === 1000) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

async function round(latencies) {
  const start = process.hrtime.bigint();
  let ops = 0;
  if (p.workload === "getGroup") {
    const values = await adapter.getGroup(p.group);
    if (values.length !== p.items) throw new Error(`getGroup returned ${values.length} items`);
    ops = 1;
  } else {
    for (let i = 0; i < p.ops; i++) {
      const key = `k${i % p.items}`;
      const t0 = process.hrtime.bigint();
      if (p.workload === "set") await adapter.set(p.group, key, makeValue(i, p.valueBytes));
      else if ((await adapter.get(p.group, key)) === null) throw new Error(`missing ${key}`);
      latencies.push(Number(process.hrtime.bigint() - t0));
    }
    ops = p.ops;
  }
  return { ops, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

await preload();
for (let i = 0; i < p.warmup; i++) await round([]);
const rounds = [];
const latencies = [];
for (let i = 0; i < p.rounds; i++) rounds.push(await round(latencies));
latencies.sort((a, b) => a - b);
await adapter.clear(p.group);
await adapter.cleanup();
console.log(JSON.stringify({
  rounds,
  latency_ns: latencies.length ? { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) } : null,
}));
