// npm eventsource against two nodes sharing Redis: the node it follows is
// killed, events are published through the other node meanwhile, the node
// comes back on the same port, and the client's own resume replays them.

import { test } from 'node:test';
import { openNodeClient } from '../lib/client-node.mjs';
import { withHarness } from '../lib/harness.mjs';
import { restartScenario } from '../lib/scenarios.mjs';

for (const signal of ['SIGKILL', 'SIGTERM']) {
  test(`eventsource resumes from Redis history after a node restart (${signal})`, { timeout: 120_000 }, (t) =>
    withHarness(t, (h) => restartScenario(h, openNodeClient, { signal })),
  );
}
