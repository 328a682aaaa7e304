// npm eventsource: the server ends streams at max lifetime while events keep
// coming on two topics; the client resumes by itself with Last-Event-ID and
// ends with exactly the published events.

import { test } from 'node:test';
import { openNodeClient } from '../lib/client-node.mjs';
import { withHarness } from '../lib/harness.mjs';
import { lifetimeScenario } from '../lib/scenarios.mjs';

test('eventsource resumes across max-lifetime ends without loss or duplicates', { timeout: 90_000 }, (t) =>
  withHarness(t, (h) => lifetimeScenario(h, openNodeClient)),
);
