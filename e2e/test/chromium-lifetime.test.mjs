// Chromium's native EventSource: the lifetime scenario of
// eventsource-lifetime.test.mjs, in a headless browser.

import { test } from 'node:test';
import { openBrowserClient } from '../lib/client-browser.mjs';
import { withHarness } from '../lib/harness.mjs';
import { lifetimeScenario } from '../lib/scenarios.mjs';

test('chromium EventSource resumes across max-lifetime ends without loss or duplicates', { timeout: 120_000 }, (t) =>
  withHarness(t, (h) => lifetimeScenario(h, openBrowserClient)),
);
