// A small line chart as inline SVG, built with DOM APIs (no library, no
// inline styles: colours come from classes in style.css).

import { formatShortDate } from '/assets/util.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  el.append(...children);
  return el;
}

/**
 * points: [{ t: epoch ms, v: number }] (any order); formatV(v) -> text.
 * title: the chart's <title>; summary: its accessible name.
 */
export function lineChart({ title, summary, points, formatV, width }) {
  const W = Math.max(240, Math.round(width || 480));
  const H = 150;
  const left = 70;
  const right = 14;
  const top = 12;
  const bottom = 26;
  const data = [...points].sort((a, b) => a.t - b.t);
  const t0 = data[0].t;
  const t1 = data[data.length - 1].t;
  const vMax = Math.max(...data.map((p) => p.v)) || 1;
  const x = (t) => (t1 === t0 ? left + (W - left - right) / 2 : left + ((t - t0) / (t1 - t0)) * (W - left - right));
  const y = (v) => top + (1 - v / vMax) * (H - top - bottom);

  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': summary });
  svg.append(s('title', {}, title));
  for (const v of [0, vMax / 2, vMax]) {
    svg.append(
      s('line', { class: 'grid', x1: left, x2: W - right, y1: y(v), y2: y(v) }),
      s('text', { class: 'axis', x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, formatV(v)),
    );
  }
  svg.append(s('text', { class: 'axis', x: x(t0), y: H - 6, 'text-anchor': t1 === t0 ? 'middle' : 'start' }, formatShortDate(t0)));
  if (t1 !== t0) svg.append(s('text', { class: 'axis', x: W - right, y: H - 6, 'text-anchor': 'end' }, formatShortDate(t1)));
  if (data.length > 1) {
    svg.append(s('polyline', { class: 'line', points: data.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ') }));
  }
  for (const p of data) svg.append(s('circle', { class: 'dot', cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 3 }));
  return svg;
}
