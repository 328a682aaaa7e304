// A tus-js-client upload in a process of its own, for resuming across
// processes: a test runs it twice with the same FileUrlStorage file, as a
// user would rerun an uploader after it was stopped.
//
// Input: the environment variable TUS_CHILD, JSON
//   {mode, endpoint, token, file, storage, chunkSize, metadata,
//    paceBytesPerSecond, abortAfterMs}
// mode "abort":  starts a new upload of file, sending at paceBytesPerSecond,
//                aborts it on a timer (abortAfterMs) armed when the server
//                has accepted the first chunk (not from onProgress: that
//                counts bytes handed to the socket) and exits.
// mode "resume": finds the previous upload of file in storage
//                (findPreviousUploads), resumes it (resumeFromPreviousUpload)
//                and exits once it finished.
// Output: one line `RESULT {json}` on stdout, then exit code 0 (done) or 1.

import { FileUrlStorage } from 'tus-js-client';
import { TusClient, describeError, fileInput, pacedFileReader } from './uploads.mjs';

const args = JSON.parse(process.env.TUS_CHILD ?? '{}');

function finish(code, result) {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(code));
}

// A child that hangs is a failure the parent sees as a missing RESULT; the
// parent's deadline is shorter than this.
setTimeout(() => finish(1, { error: 'child timed out after 60 s' }), 60_000).unref();

const storage = new FileUrlStorage(args.storage);
const common = {
  token: args.token,
  endpoint: args.endpoint,
  chunkSize: args.chunkSize,
  metadata: args.metadata,
  urlStorage: storage,
};

try {
  if (args.mode === 'abort') {
    let armed = false;
    const c = new TusClient(
      fileInput(args.file),
      {
        ...common,
        fileReader: pacedFileReader(args.paceBytesPerSecond),
        onChunkComplete: (_chunk, accepted, total) => {
          if (armed) return;
          armed = true;
          setTimeout(async () => {
            await c.upload.abort();
            finish(0, { url: c.url, accepted, total, requests: c.requests });
          }, args.abortAfterMs);
        },
      },
      { start: false },
    );
    const previous = await c.upload.findPreviousUploads();
    if (previous.length !== 0) {
      finish(1, { error: `fresh storage already holds ${previous.length} uploads`, previous });
    } else {
      c.upload.start();
      c.done.then(
        () => finish(1, { error: 'the upload finished before it was aborted', url: c.url, requests: c.requests }),
        (err) => finish(1, { error: describeError(err), requests: c.requests }),
      );
    }
  } else if (args.mode === 'resume') {
    const c = new TusClient(fileInput(args.file), common, { start: false });
    const previous = await c.upload.findPreviousUploads();
    if (previous.length !== 1) {
      finish(1, { error: `expected 1 previous upload in ${args.storage}, found ${previous.length}`, previous });
    } else {
      c.upload.resumeFromPreviousUpload(previous[0]);
      c.upload.start();
      c.done.then(
        () => finish(0, { url: c.url, previousUrl: previous[0].uploadUrl, requests: c.requests }),
        (err) => finish(1, { error: describeError(err), requests: c.requests }),
      );
    }
  } else {
    finish(1, { error: `unknown mode ${args.mode}` });
  }
} catch (err) {
  finish(1, { error: String(err?.stack ?? err) });
}
