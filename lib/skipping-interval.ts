/**
 * Runs `task` every `ms`, skipping a tick while the last run is still pending: a server slower
 * than the interval would otherwise pile runs up behind it. `task` handles its own failures.
 */
export function skippingInterval(task: () => Promise<unknown>, ms: number): NodeJS.Timeout {
  let pending = false;
  const done = () => {
    pending = false;
  };
  return setInterval(() => {
    if (pending) return;
    pending = true;
    task().then(done, done);
  }, ms);
}
