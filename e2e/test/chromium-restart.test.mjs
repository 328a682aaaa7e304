// Chromium's native EventSource: the restart scenario of
// eventsource-restart.test.mjs, in a headless browser.

import { test } from 'node:test';
import { openBrowserClient } from '../lib/client-browser.mjs';
import { withHarness } from '../lib/harness.mjs';
import { restartScenario } from '../lib/scenarios.mjs';

for (const signal of ['SIGKILL', 'SIGTERM']) {
  test(`chromium EventSource resumes from Redis history after a node restart (${signal})`, { timeout: 150_000 }, (t) =>
    withHarness(t, (h) => restartScenario(h, openBrowserClient, { signal })),
  );
}
