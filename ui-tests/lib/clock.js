// Window-aware timing for tests that send traffic against MINUTE limits.

/**
 * If the current UTC minute ends within `marginMs`, wait for the next one, so
 * that the requests that follow fall in one window. This waits for the clock
 * itself (a window boundary), not for a condition that could be polled.
 */
export async function awayFromMinuteEnd(marginMs = 15000) {
  const into = Date.now() % 60000;
  if (into > 60000 - marginMs) {
    await new Promise((resolve) => setTimeout(resolve, 60000 - into + 250));
  }
}
