// What the pages' two WebSocket clients (matchmaker.js for the matchmaker, which the seeker,
// listener and supervisor pages use, and chat.js for the relay) share about keeping a connection:
// only the current socket's events count, a frame the client cannot handle is dropped, and a
// dropped connection is opened again after a backoff.

// Hands the events of `ws` to `on` ({open(), message(data), close(event)}) for as long as
// `isCurrent(ws)`: once the client has let go of a socket (closed it, or opened another), whatever
// that socket still reports is ignored. A frame `on.message` throws on is dropped, never fatal.
export function follow(ws, isCurrent, on) {
  ws.onopen = () => { if (isCurrent(ws)) on.open(); };
  ws.onmessage = (ev) => {
    if (!isCurrent(ws)) return;
    try { on.message(ev.data); } catch { /* a bad frame is dropped, never fatal */ }
  };
  ws.onclose = (ev) => { if (isCurrent(ws)) on.close(ev); };
}

// The wait in ms before reconnect attempt `attempt` (0: the first since the last success). It
// doubles with each attempt up to `maxMs`, and is drawn at random from the upper half of that, so
// that many pages cut off at once do not all come back in the same instant.
export function backoffDelay(attempt, { firstMs = 500, maxMs = 15000 } = {}) {
  const base = Math.min(maxMs, firstMs * 2 ** Math.min(attempt, 16));
  return base / 2 + Math.random() * base / 2;
}
