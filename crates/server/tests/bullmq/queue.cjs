// BullMQ's basic producer and worker against kvs at 127.0.0.1:$PORT, as its users write them:
// 2 producers add JOBS jobs (every 50th fails its first attempt and is retried after a fixed
// backoff) and one job delayed by DELAY_MS; 4 workers process them. Prints one JSON line of
// facts and exits 0 only if every job completed exactly once, with its result, the retried ones
// on their second attempt, the delayed one not before its delay, and every worker took part.
const { Queue, Worker } = require('bullmq');

const port = Number(process.env.PORT);
const TOTAL = Number(process.env.JOBS || 1000);
const DELAY_MS = 1000;
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
const name = `kvs-test-${process.pid}`;

function fail(why) {
  console.error(`FAILED: ${why}`);
  process.exit(1);
}

(async () => {
  const producers = [new Queue(name, { connection }), new Queue(name, { connection })];
  const completions = new Map(); // job id -> successful runs
  const attempts = new Map(); // job id -> attempts seen
  const byWorker = [0, 0, 0, 0];
  let delayedRanAt = null;
  const workers = [];
  const finished = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out with ${completions.size} of ${TOTAL + 1} jobs done`)),
      60000,
    );
    for (let w = 0; w < 4; w++) {
      const worker = new Worker(
        name,
        async (job) => {
          attempts.set(job.id, (attempts.get(job.id) || 0) + 1);
          if (job.data.fail && job.attemptsMade === 0) {
            throw new Error('the first attempt fails');
          }
          if (job.name === 'delayed') delayedRanAt = Date.now();
          byWorker[w] += 1;
          completions.set(job.id, (completions.get(job.id) || 0) + 1);
          if (completions.size === TOTAL + 1) {
            clearTimeout(timer);
            resolve();
          }
          return { doubled: job.data.n * 2 };
        },
        { connection, concurrency: 5 },
      );
      worker.on('error', (e) => reject(e));
      workers.push(worker);
    }
  });

  const started = Date.now();
  const adds = [];
  for (let i = 0; i < TOTAL; i++) {
    adds.push(
      producers[i % 2].add(
        'job',
        { n: i, fail: i % 50 === 0 },
        { attempts: 3, backoff: { type: 'fixed', delay: 50 } },
      ),
    );
  }
  const delayedAddedAt = Date.now();
  adds.push(producers[1].add('delayed', { n: -1 }, { delay: DELAY_MS }));
  const added = await Promise.all(adds);
  await finished;

  // The last completions are recorded just after their handlers return: wait for the counts.
  let counts;
  for (let i = 0; i < 100; i++) {
    counts = await producers[0].getJobCounts();
    if (counts.completed === TOTAL + 1) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const ids = new Set(added.map((j) => j.id));
  const twice = [...completions.values()].filter((n) => n !== 1).length;
  const retried = [...attempts.entries()].filter(([, n]) => n === 2).length;
  const sample = await producers[1].getJob(added[7].id);
  const facts = {
    jobs: ids.size,
    completed: completions.size,
    twice,
    retried,
    delayMs: delayedRanAt - delayedAddedAt,
    byWorker,
    counts,
    sampleResult: sample && sample.returnvalue,
    ms: Date.now() - started,
  };
  console.log(JSON.stringify(facts));
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(producers.map((p) => p.close()));

  if (ids.size !== TOTAL + 1) fail(`${ids.size} distinct job ids for ${TOTAL + 1} jobs`);
  if (completions.size !== TOTAL + 1) fail(`${completions.size} jobs completed`);
  if (twice !== 0) fail(`${twice} jobs completed more than once`);
  if (retried !== TOTAL / 50) fail(`${retried} jobs retried, expected ${TOTAL / 50}`);
  if ([...attempts.values()].some((n) => n > 2)) fail('a job ran more than twice');
  if (!(facts.delayMs >= DELAY_MS - 5)) fail(`the delayed job ran after ${facts.delayMs} ms`);
  if (byWorker.some((n) => n === 0)) fail(`a worker processed nothing: ${byWorker}`);
  if (counts.completed !== TOTAL + 1 || counts.failed !== 0 || counts.waiting !== 0 || counts.active !== 0 || counts.delayed !== 0) {
    fail(`job counts ${JSON.stringify(counts)}`);
  }
  if (!sample || sample.returnvalue.doubled !== 14) fail(`job 7's result is ${JSON.stringify(sample && sample.returnvalue)}`);
  console.log('bullmq: done');
  process.exit(0);
})().catch((e) => fail(e.stack || e));
