// BullMQ baseline for the bus benchmark: the same work as bus_bench (one job per
// message, the worker inserts a row with a NUMERIC(78,0) amount into PostgreSQL and
// the job completes), against the same Redis and PostgreSQL.
//   node bullmq_bench.mjs <redis-port> <pg-url> <jobs> <concurrency> [rate]
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../deploy/package.json'));
const { Queue, Worker, QueueEvents } = require('bullmq');
const pg = require('pg');

const [port, pgUrl, jobsArg, concArg, rateArg] = process.argv.slice(2);
const total = Number(jobsArg), concurrency = Number(concArg), rate = Number(rateArg || 0);
const connection = { host: '127.0.0.1', port: Number(port) };
const pool = new pg.Pool({ connectionString: pgUrl, max: concurrency + 1 });
await pool.query('DROP SCHEMA IF EXISTS bench_bull CASCADE; CREATE SCHEMA bench_bull;' +
  'CREATE TABLE bench_bull.effects (message_id text PRIMARY KEY, amount numeric(78,0) NOT NULL)');

const queue = new Queue('bench', { connection });
await queue.obliterate({ force: true });
const lat = new Float64Array(total);
const sent = new Float64Array(total);
let done = 0, resolveDone;
const allDone = new Promise((r) => (resolveDone = r));
const worker = new Worker('bench', async (job) => {
  await pool.query('INSERT INTO bench_bull.effects (message_id, amount) VALUES ($1, $2::numeric)',
    [job.data.id, job.data.a]);
  return job.data.i;
}, { connection, concurrency, autorun: true });
worker.on('completed', (job) => {
  const i = job.data.i;
  lat[i] = performance.now() - sent[i];
  if (++done === total) resolveDone();
});
await worker.waitUntilReady();

const t0 = performance.now();
if (rate > 0) {
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    while (performance.now() < due) await new Promise((r) => setImmediate(r));
    sent[i] = performance.now();
    await queue.add('m', { i, id: `b-${i}`, a: '1000000000000000000' },
      { removeOnComplete: true, removeOnFail: true });
  }
} else {
  const chunk = 1000;
  for (let i = 0; i < total; i += chunk) {
    const jobs = [];
    for (let k = i; k < Math.min(total, i + chunk); k++) {
      sent[k] = performance.now();
      jobs.push({ name: 'm', data: { i: k, id: `b-${k}`, a: '1000000000000000000' },
        opts: { removeOnComplete: true, removeOnFail: true } });
    }
    await queue.addBulk(jobs);
  }
}
const tPub = performance.now();
await Promise.race([allDone, new Promise((r) => setTimeout(r, 180000))]);
const t1 = performance.now();
const sorted = Array.from(lat).sort((a, b) => a - b);
console.log(JSON.stringify({ consumers: concurrency, messages: total, handled: done,
  seconds: +((t1 - t0) / 1000).toFixed(3), msgs_per_s: Math.round(done / ((t1 - t0) / 1000)),
  publish_per_s: Math.round(total / ((tPub - t0) / 1000)),
  p50_ms: +sorted[Math.floor(total / 2)].toFixed(2), p99_ms: +sorted[Math.floor(total * 0.99)].toFixed(2), rate }));
await worker.close(); await queue.close(); await pool.end();
process.exit(done === total ? 0 : 1);
