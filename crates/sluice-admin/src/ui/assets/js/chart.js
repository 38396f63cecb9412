// The Backend traffic chart: one bar per window (forwarded, with refused
// stacked on top) against a dashed line at the window's limit. Inline SVG
// built with the DOM; it scales to its container's width.

import { s } from './dom.js';

const WIDTH = 440;
const HEIGHT = 220;
const MARGIN = { top: 22, right: 10, bottom: 26, left: 40 };

function pad(n) {
  return String(n).padStart(2, '0');
}

/** A window's start time as people read it for this unit (UTC). */
export function windowLabel(start, unit) {
  const date = new Date(start);
  const hm = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
  if (unit === 'SECOND') return `${hm}:${pad(date.getUTCSeconds())}`;
  if (unit === 'MINUTE' || unit === 'HOUR') return hm;
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

function niceStep(max) {
  const rough = max / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  for (const factor of [1, 2, 2.5, 5, 10]) {
    if (factor * power >= rough) return Math.max(1, factor * power);
  }
  return Math.max(1, 10 * power);
}

/**
 * The chart as an <svg>. `windows`: [{start, forwarded, refused, partial}]
 * oldest first; `limit`: the line (null: none); `slots`: bars the width holds;
 * `label`: the accessible summary; `what`: the counted thing ("requests").
 */
export function windowChart({ windows, limit, unit, slots = 20, label, what = 'requests', usedWord = 'forwarded' }) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const highest = Math.max(1, limit ?? 0, ...windows.map((w) => w.forwarded + w.refused));
  const step = niceStep(highest * 1.12);
  const top = Math.ceil((highest * 1.12) / step) * step;
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const slot = plotWidth / slots;
  const barWidth = Math.max(2, slot * 0.7);

  const svg = s('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' });
  svg.append(s('title', {}, label));

  for (let value = 0; value <= top + 1e-9; value += step) {
    svg.append(
      s('line', { class: value === 0 ? 'axis' : 'grid', x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value) }),
      s('text', { x: MARGIN.left - 6, y: y(value) + 4, 'text-anchor': 'end' }, formatTick(value)),
    );
  }
  svg.append(s('text', { x: 4, y: MARGIN.top - 9 }, `${what} per ${unit.toLowerCase()} window`));

  const shown = windows.slice(-slots);
  const first = slots - shown.length;
  shown.forEach((window, i) => {
    const x = MARGIN.left + (first + i) * slot + (slot - barWidth) / 2;
    const group = s('g', {
      class: 'window',
      dataset: {
        start: String(window.start),
        forwarded: String(window.forwarded),
        refused: String(window.refused),
        current: i === shown.length - 1 ? 'true' : 'false',
      },
    });
    const since = window.partial ? ' (since this view opened)' : '';
    group.append(s('title', {}, `Window from ${windowLabel(window.start, unit)} UTC${since}: ${window.forwarded} ${usedWord}, ${window.refused} refused`));
    if (window.forwarded > 0) {
      group.append(s('rect', { class: 'bar-forwarded', x, width: barWidth, y: y(window.forwarded), height: y(0) - y(window.forwarded) }));
    }
    if (window.refused > 0) {
      const base = window.forwarded;
      group.append(s('rect', { class: 'bar-refused', x, width: barWidth, y: y(base + window.refused), height: y(base) - y(base + window.refused) }));
    }
    // Label every few bars, as many as fit without overlapping, newest first.
    const every = Math.max(1, Math.ceil((unit === 'SECOND' ? 64 : unit === 'DAY' ? 84 : 46) / slot));
    if ((shown.length - 1 - i) % every === 0) {
      group.append(s('text', { x: x + barWidth / 2, y: HEIGHT - 8, 'text-anchor': 'middle' }, windowLabel(window.start, unit)));
    }
    svg.append(group);
  });

  if (limit !== null && limit !== undefined) {
    svg.append(
      s('line', { class: 'limit-line', x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(limit), y2: y(limit) }),
      s('text', { class: 'limit-label', x: MARGIN.left + 6, y: y(limit) - 5 }, `limit ${formatTick(limit)}`),
    );
  }
  return svg;
}

function formatTick(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e4) return `${+(value / 1e3).toFixed(1)}k`;
  return String(+value.toFixed(2));
}
