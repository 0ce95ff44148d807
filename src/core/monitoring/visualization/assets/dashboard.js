/* Smart Whale dashboard: plain script (no build step), charts with uPlot, live over Server-Sent Events. */
(function () {
  'use strict';
  var KEEP = 600;
  var CHARTS = [
    { id: 'rate', title: 'Requests / s', match: function (k) { return k === 'requests.rate' || k === 'requests.error_rate' || /^model\..*\.rate$/.test(k); } },
    { id: 'latency', title: 'Latency percentiles (ms)', match: function (k) { return k.indexOf('latency.') === 0; } },
    { id: 'batch', title: 'Mean batch size', match: function (k) { return k === 'batch.mean_size'; } },
    { id: 'queue', title: 'Queue depth', match: function (k) { return k === 'queue.depth'; } },
    { id: 'cache', title: 'Cache hit rate per tier', match: function (k) { return k.indexOf('cache.') === 0; } },
    { id: 'federation', title: 'Federation rounds and accuracy', match: function (k) { return k.indexOf('federation.') === 0; } },
    { id: 'devices', title: 'Utilization per device', match: function (k) { return /^device\..*\.utilization$/.test(k); } },
    { id: 'memory', title: 'Memory used per device (GiB)', match: function (k) { return /^device\..*\.memory_used_bytes$/.test(k); }, scale: 1 / 1073741824 },
  ];
  var COLORS = ['#58a6ff', '#3fb950', '#d29922', '#bc8cff', '#39c5cf', '#ff7b72', '#e3b341', '#8b949e'];
  var state = { times: [], values: {}, anomalies: [], anomalyLog: [], active: {}, recent: [], charts: {} };

  function $(id) { return document.getElementById(id); }
  function fmt(v, digits) { return v === undefined || v === null || isNaN(v) ? '–' : Number(v).toFixed(digits === undefined ? 1 : digits); }

  function reset(samples) {
    state.times = []; state.values = {}; state.anomalies = []; state.anomalyLog = [];
    samples.forEach(function (s) { addSample(s, false); });
    redrawAll();
    if (samples.length) showLatest(samples[samples.length - 1]);
  }

  function addSample(s, draw) {
    var i = state.times.length;
    state.times.push(s.ts / 1000);
    Object.keys(s.values).forEach(function (k) {
      var arr = state.values[k];
      if (!arr) { arr = state.values[k] = new Array(i).fill(null); }
      arr.push(s.values[k]);
    });
    Object.keys(state.values).forEach(function (k) { if (state.values[k].length < i + 1) state.values[k].push(null); });
    state.anomalies.push((s.anomalies || []).map(function (a) { return a.series; }));
    if (state.times.length > KEEP) {
      state.times.shift(); state.anomalies.shift();
      Object.keys(state.values).forEach(function (k) { state.values[k].shift(); });
    }
    (s.anomalies || []).forEach(function (a) { state.anomalyLog.unshift({ ts: s.ts, series: a.series, score: a.score }); });
    state.anomalyLog = state.anomalyLog.slice(0, 30);
    if (draw) { redrawAll(); showLatest(s); }
  }

  function renderAnomalies() {
    var ul = $('anomalies'); ul.textContent = '';
    state.anomalyLog.forEach(function (a) {
      var li = document.createElement('li'); li.className = 'anomaly';
      var when = document.createElement('span'); when.className = 'when'; when.textContent = new Date(a.ts).toLocaleTimeString();
      var text = document.createElement('span'); text.textContent = a.series + ' (score ' + fmt(a.score, 2) + ')';
      li.appendChild(when); li.appendChild(text); ul.appendChild(li);
    });
  }

  function chartKeys(c) { return Object.keys(state.values).filter(c.match).sort(); }

  function chartData(c, keys) {
    var scale = c.scale || 1;
    var data = [state.times];
    keys.forEach(function (k) { data.push(state.values[k].map(function (v) { return v === null ? null : v * scale; })); });
    // Anomalies: the value of the first anomalous series of this chart at that point, else a gap.
    data.push(state.times.map(function (_, i) {
      var hit = keys.filter(function (k) { return state.anomalies[i].indexOf(k) >= 0; })[0];
      return hit === undefined ? null : state.values[hit][i] * scale;
    }));
    return data;
  }

  function makeChart(c, keys) {
    var host = $('chart-' + c.id);
    if (!host) {
      host = document.createElement('div');
      host.className = 'chart'; host.id = 'chart-' + c.id;
      var h = document.createElement('h2'); h.textContent = c.title; host.appendChild(h);
      $('charts').appendChild(host);
    }
    var old = state.charts[c.id];
    if (old) old.plot.destroy();
    var series = [{}].concat(keys.map(function (k, i) { return { label: k, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } }; }));
    series.push({ label: 'anomaly', stroke: '#f85149', fill: '#f85149', paths: function () { return null; }, points: { show: true, size: 9, stroke: '#f85149', fill: '#f85149' } });
    var width = Math.max(300, host.clientWidth - 24);
    var plot = new uPlot({ width: width, height: 170, series: series, scales: { x: { time: true } }, legend: { live: false } }, chartData(c, keys), host);
    state.charts[c.id] = { plot: plot, keys: keys.join('|') };
  }

  function redrawAll() {
    CHARTS.forEach(function (c) {
      var keys = chartKeys(c);
      if (!keys.length) return;
      var cur = state.charts[c.id];
      if (!cur || cur.keys !== keys.join('|')) makeChart(c, keys);
      else cur.plot.setData(chartData(c, keys));
    });
  }

  function showLatest(s) {
    var v = s.values;
    renderAnomalies();
    $('stat-total-requests').textContent = String(s.totals ? s.totals.requests : 0);
    $('stat-rate').textContent = fmt(v['requests.rate']);
    $('stat-p95').textContent = fmt(v['latency.p95_ms'], 2) + ' ms';
    $('stat-queue').textContent = fmt(v['queue.depth'], 0);
    $('stat-l1').textContent = v['cache.l1.hit_ratio'] === undefined ? '–' : fmt(100 * v['cache.l1.hit_ratio'], 0) + ' %';
    $('updated').textContent = new Date(s.ts).toLocaleTimeString();
    if (s.health) {
      var hb = $('health');
      hb.textContent = s.health.ready ? 'ready' : 'not ready: ' + s.health.failing.map(function (f) { return f.name + ' (' + f.reason + ')'; }).join('; ');
      hb.className = 'badge ' + (s.health.ready ? 'ok' : 'bad');
    }
    var body = $('models').tBodies[0];
    body.textContent = '';
    (s.models || []).forEach(function (m) {
      var tr = document.createElement('tr');
      [m.name, m.version, m.state, fmt(v['model.' + m.name + '.rate'])].forEach(function (t, i) {
        var td = document.createElement('td'); td.textContent = t;
        if (i === 2) td.className = 'state-' + m.state;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function alertItem(a) {
    var li = document.createElement('li');
    li.className = a.severity + (a.state === 'resolved' ? ' resolved' : '');
    li.dataset.rule = a.rule;
    var when = document.createElement('span'); when.className = 'when';
    when.textContent = new Date(a.ts).toLocaleTimeString() + ' ' + a.state;
    var text = document.createElement('span');
    text.textContent = '[' + a.severity + '] ' + a.rule + ': ' + a.message;
    li.appendChild(when); li.appendChild(text);
    return li;
  }

  function renderAlerts() {
    var act = $('alerts-active'); act.textContent = '';
    Object.keys(state.active).forEach(function (k) { act.appendChild(alertItem(state.active[k])); });
    $('stat-alerts').textContent = String(Object.keys(state.active).length);
    var rec = $('alerts-recent'); rec.textContent = '';
    state.recent.slice(0, 30).forEach(function (a) { rec.appendChild(alertItem(a)); });
  }

  function onAlert(a) {
    if (a.state === 'firing') state.active[a.fingerprint] = a; else delete state.active[a.fingerprint];
    state.recent.unshift(a);
    renderAlerts();
  }

  function connect() {
    var es = new EventSource('/dashboard/events');
    var badge = $('connection');
    es.onopen = function () { badge.textContent = 'live'; badge.className = 'badge on'; };
    es.onerror = function () { badge.textContent = 'reconnecting…'; badge.className = 'badge off'; };
    es.addEventListener('snapshot', function (e) {
      var snap = JSON.parse(e.data);
      state.active = {};
      snap.alerts.active.forEach(function (a) { state.active[a.fingerprint] = a; });
      state.recent = snap.alerts.recent;
      renderAlerts();
      reset(snap.samples);
    });
    es.addEventListener('sample', function (e) { addSample(JSON.parse(e.data), true); });
    es.addEventListener('alert', function (e) { onAlert(JSON.parse(e.data)); });
  }

  window.addEventListener('resize', function () { Object.keys(state.charts).forEach(function (id) { delete state.charts[id].keys; }); redrawAll(); });
  connect();
})();
