// infrastream console: live charts from GET /metrics (Prometheus text, parsed here), drawn
// on plain <canvas> elements. Rates come from counter deltas between two scrapes, latency
// quantiles from the deltas of the delivery-latency histogram's cumulative buckets.

const POINTS = 90; // 3 minutes at one scrape every 2 s

/** `name{labels} value` lines to a map of `name{labels}` → number (comments skipped). */
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    if (cut < 0) continue;
    const value = Number(line.slice(cut + 1));
    if (!Number.isNaN(value)) out.set(line.slice(0, cut).trim(), value);
  }
  return out;
}

/** Bucket bounds and cumulative counts of histogram `name`, sorted by bound. */
function buckets(m, name) {
  const list = [];
  const prefix = `${name}_bucket{le="`;
  for (const [key, value] of m) {
    if (!key.startsWith(prefix)) continue;
    const le = key.slice(prefix.length, key.indexOf('"', prefix.length));
    list.push({ le: le === '+Inf' ? Infinity : Number(le), value });
  }
  return list.sort((a, b) => a.le - b.le);
}

/** The q-quantile of the observations between two scrapes, as histogram_quantile does. */
export function quantile(q, before, after) {
  const deltas = after.map((b, i) => ({ le: b.le, n: b.value - (before[i]?.value ?? 0) }));
  const total = deltas.at(-1)?.n ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevN = 0;
  for (const { le, n } of deltas) {
    if (n >= rank) {
      if (le === Infinity) return prevLe; // beyond the last bound: its lower edge
      return prevLe + ((le - prevLe) * (rank - prevN)) / Math.max(n - prevN, 1e-9);
    }
    prevLe = le;
    prevN = n;
  }
  return prevLe;
}

class Chart {
  constructor(canvas, series, unit) {
    this.canvas = canvas;
    this.series = series.map((s) => ({ ...s, data: [] }));
    this.unit = unit;
  }

  push(values) {
    this.series.forEach((s, i) => {
      s.data.push(values[i]);
      if (s.data.length > POINTS) s.data.shift();
    });
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (c.width !== Math.round(w * dpr)) c.width = Math.round(w * dpr);
    if (c.height !== Math.round(h * dpr)) c.height = Math.round(h * dpr);
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const all = this.series.flatMap((s) => s.data).filter((v) => v != null);
    const max = Math.max(1e-9, ...all) * 1.15;
    const top = 16;
    g.strokeStyle = '#d0d7de';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(0, h - 0.5);
    g.lineTo(w, h - 0.5);
    g.stroke();
    const x = (i) => (w * i) / (POINTS - 1);
    const y = (v) => h - 1 - ((h - top - 2) * v) / max;
    for (const s of this.series) {
      g.strokeStyle = s.color;
      g.lineWidth = 1.5;
      g.beginPath();
      let pen = false;
      const offset = POINTS - s.data.length;
      s.data.forEach((v, i) => {
        if (v == null) {
          pen = false;
          return;
        }
        if (pen) g.lineTo(x(offset + i), y(v));
        else g.moveTo(x(offset + i), y(v));
        pen = true;
      });
      g.stroke();
    }
    g.font = '11px system-ui, sans-serif';
    let lx = 4;
    for (const s of this.series) {
      const last = s.data.at(-1);
      const label = `${s.label} ${last == null ? '–' : fmt(last)}${this.unit}`;
      g.fillStyle = s.color;
      g.fillText(label, lx, 11);
      lx += g.measureText(label).width + 12;
    }
  }
}

function fmt(v) {
  if (v >= 100) return Math.round(v).toString();
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * Scrapes /metrics every 2 s while `active()` and feeds three charts: events/s (appended to
 * the log, and received by this page), deliveries/s, and delivery latency p50/p99 in ms.
 */
export class MetricsCharts {
  constructor(session, els, received, active) {
    this.session = session;
    this.received = received; // () => total events this page received so far
    this.active = active;
    this.status = els.status;
    this.events = new Chart(els.events, [
      { label: 'appended/s', color: '#0969da' },
      { label: 'received/s', color: '#8250df' },
    ], '');
    this.deliveries = new Chart(els.deliveries, [{ label: 'deliveries/s', color: '#1a7f37' }], '');
    this.latency = new Chart(els.latency, [
      { label: 'p50', color: '#bf8700' },
      { label: 'p99', color: '#cf222e' },
    ], ' ms');
    this.prev = null;
    this.timer = null;
  }

  start() {
    if (!this.timer) this.timer = setInterval(() => this.scrape(), 2000);
    this.scrape();
    this.draw();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.prev = null;
    this.refused = false;
  }

  async scrape() {
    if (!this.active()) {
      this.prev = null; // a gap: no rate across it
      return;
    }
    const at = performance.now();
    const received = this.received();
    let m = null;
    if (!this.refused) {
      try {
        m = parseMetrics(await this.session.metrics());
        this.status.textContent = '';
        this.status.dataset.scrapes = String(Number(this.status.dataset.scrapes ?? 0) + 1);
      } catch (e) {
        // Refused (e.g. a metrics token other than our credential): not asked again until the
        // next login; events/s then comes from this page alone.
        if ([401, 403, 404].includes(e.status)) this.refused = true;
        this.status.textContent = `metrics unavailable (${e.message}); events/s from this page only`;
      }
    }
    const cur = {
      at,
      received,
      appended: m?.get('infrastream_events_appended_total'),
      deliveries: m?.get('infrastream_deliveries_total'),
      latency: m ? buckets(m, 'infrastream_delivery_latency_seconds') : [],
    };
    const prev = this.prev;
    this.prev = cur;
    if (!prev) return;
    const dt = (cur.at - prev.at) / 1000;
    const rate = (a, b) => (a == null || b == null ? null : Math.max(0, (a - b) / dt));
    // A restarted server starts its counters again: no rate across that.
    const restarted = cur.deliveries != null && prev.deliveries != null && cur.deliveries < prev.deliveries;
    this.events.push([restarted ? null : rate(cur.appended, prev.appended), rate(cur.received, prev.received)]);
    this.deliveries.push([restarted ? null : rate(cur.deliveries, prev.deliveries)]);
    const ms = (q) => {
      if (restarted || cur.latency.length === 0 || cur.latency.length !== prev.latency.length) return null;
      const v = quantile(q, prev.latency, cur.latency);
      return v == null ? null : v * 1000;
    };
    this.latency.push([ms(0.5), ms(0.99)]);
    this.draw();
  }

  draw() {
    this.events.draw();
    this.deliveries.draw();
    this.latency.draw();
  }
}
