// Stairways monitor: renders the snapshots the server streams (server-sent events).
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var money = function (v) {
    if (v === null || v === undefined || isNaN(v)) { return "-"; }
    var s = Math.abs(v).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
    return (v < 0 ? "-$" : "$") + s;
  };
  var pct = function (v, d) {
    if (v === null || v === undefined || isNaN(v)) { return "-"; }
    return (100 * v).toFixed(d === undefined ? 2 : d) + "%";
  };
  var num = function (v, d) {
    if (v === null || v === undefined || isNaN(v)) { return "-"; }
    return Number(v).toLocaleString("en-US", {maximumFractionDigits: d === undefined ? 2 : d});
  };
  var time = function (iso) { return iso ? iso.replace("T", " ").slice(0, 19) : ""; };
  var signed = function (el, v) {
    el.textContent = money(v);
    el.className = v < 0 ? "neg" : (v > 0 ? "pos" : "");
  };
  function rows(tableId, items, cells) {
    var body = $(tableId).tBodies[0];
    body.innerHTML = "";
    if (!items.length) {
      var tr = body.insertRow(), td = tr.insertCell();
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      td.className = "muted"; td.textContent = "none";
      return;
    }
    items.forEach(function (item) {
      var tr = body.insertRow();
      cells(item).forEach(function (c) {
        var td = tr.insertCell();
        if (typeof c === "object" && c !== null) { td.textContent = c.text; td.className = c.cls || ""; }
        else { td.textContent = c; }
      });
    });
  }

  function chart(s) {
    var c = s.curve || [];
    if (!window.Plotly) { return; }
    var t = c.map(function (p) { return p.t; });
    var lim = s.limits.drawdown || {};
    var traces = [
      {x: t, y: c.map(function (p) { return p.equity; }), name: "equity ($)", yaxis: "y", line: {color: "#0969da"}},
      {x: t, y: c.map(function (p) { return 100 * p.drawdown; }), name: "drawdown (%)", yaxis: "y2",
       fill: "tozeroy", line: {color: "#cf222e"}}
    ];
    var shapes = [];
    // The drawdown axis always shows the halt level, so the distance to it reads at a glance.
    var top = 110 * Math.max(lim.flatten_and_halt_at || 0, s.limits.gate_max_drawdown || 0,
                             Math.max.apply(null, c.map(function (p) { return p.drawdown; }).concat([0.01])));
    var lines = [["halve sizes", lim.halve_sizes_at, "#9a6700"], ["reduce only", lim.reduce_only_at, "#bc4c00"],
                 ["flatten and halt", lim.flatten_and_halt_at, "#cf222e"], ["ladder gate", s.limits.gate_max_drawdown, "#8250df"]];
    lines.forEach(function (l) {
      if (l[1] === null || l[1] === undefined || !t.length) { return; }
      traces.push({x: [t[0], t[t.length - 1]], y: [100 * l[1], 100 * l[1]], name: l[0] + " " + pct(l[1], 1),
                   yaxis: "y2", mode: "lines", line: {dash: "dash", color: l[2], width: 1}});
    });
    Plotly.react("chart", traces, {
      margin: {l: 60, r: 60, t: 10, b: 40}, showlegend: true, legend: {orientation: "h"},
      yaxis: {title: {text: "equity ($)"}, tickprefix: "$"},
      yaxis2: {title: {text: "drawdown"}, overlaying: "y", side: "right", tickmode: "auto", ticksuffix: "%",
               showgrid: false, range: [0, top]}, shapes: shapes
    }, {displayModeBar: false, responsive: true});
  }

  function render(s) {
    var gov = s.governor;
    $("governor-state").textContent = gov.state;
    $("governor").setAttribute("data-state", gov.state);
    $("governor-why").textContent = gov.journaled ? ("since " + time(gov.since) + " by " + gov.who + ": " + gov.why)
      : "start state: no transition journaled yet";
    var noTrading = !s.session;
    $("empty").hidden = !noTrading;
    if (s.session) {
      var x = s.session;
      $("session").textContent = (x.rehearsal ? "Rehearsal " : "Session ") + x.session_id + " of " + x.day +
        ", stage " + x.stage + ", model " + x.model_id + ", capital " + money(x.capital) +
        ", equity " + money(x.equity) + (x.ended ? " (ended: " + x.end_reason + ")" : " (running)");
    } else { $("session").textContent = ""; }
    $("pnl-day").textContent = s.pnl.day ? "on " + s.pnl.day : "today";
    ["gross", "fees", "net"].forEach(function (k) {
      var td = s.pnl.today ? s.pnl.today[k] : null, wk = s.pnl.week ? s.pnl.week[k] : null;
      if (td === null) { $("pnl-today-" + k).textContent = "no trading yet"; } else { signed($("pnl-today-" + k), k === "fees" ? -td : td); }
      if (wk === null) { $("pnl-week-" + k).textContent = "no trading yet"; } else { signed($("pnl-week-" + k), k === "fees" ? -wk : wk); }
    });
    $("pnl-week-n").textContent = s.pnl.week_sessions ? "(" + s.pnl.week_sessions + " sessions)" : "";
    $("drawdown").textContent = pct(s.drawdown);
    $("drawdown-limit").textContent = pct(s.limits.drawdown.flatten_and_halt_at);
    $("gate-drawdown").textContent = s.limits.gate_max_drawdown === null ? "-" : pct(s.limits.gate_max_drawdown);
    $("latency-p50").textContent = s.latency.p50_ms === null ? "-" : num(s.latency.p50_ms, 3) + " ms";
    $("latency-p99").textContent = s.latency.p99_ms === null ? "-" : num(s.latency.p99_ms, 3) + " ms";
    $("latency-n").textContent = num(s.latency.decisions, 0);
    $("broker").textContent = s.broker.connected === null ? "no event yet" : (s.broker.connected ? "connected" : "DISCONNECTED since " + time(s.broker.since));
    $("feed-age").textContent = s.feed_age_seconds === null ? "no bar yet" : num(s.feed_age_seconds, 0) + " s";
    $("feed-stale").textContent = num(s.feed_stale_seconds, 0) + " s";
    var act = $("alerts-active"); act.innerHTML = "";
    if (!s.alerts.active.length) { act.innerHTML = '<li class="muted">none</li>'; }
    s.alerts.active.forEach(function (a) {
      var li = document.createElement("li"); li.className = a.severity;
      li.textContent = a.severity.toUpperCase() + " " + a.name + ": " + a.message; act.appendChild(li);
    });
    chart(s);
    rows("positions", Object.keys(s.positions).map(function (k) { return [k, s.positions[k]]; }),
      function (p) { return [p[0], {text: num(p[1], 4), cls: "num"}]; });
    rows("orders", s.open_orders, function (o) { return [o.client_order_id, o.symbol, {text: num(o.quantity, 4), cls: "num"}, o.status]; });
    rows("fills", s.fills, function (f) {
      return [time(f.at), f.symbol, {text: num(f.quantity, 4), cls: "num"}, {text: money(f.price), cls: "num"}, {text: money(f.fee), cls: "num"}];
    });
    rows("decisions", s.decisions, function (d) {
      var v = d.verdicts.map(function (x) {
        return x.symbol + " " + x.decision + " " + num(x.approved, 4) + "/" + num(x.requested, 4) +
          (x.reasons.length ? " (" + x.reasons.join("; ") + ")" : "");
      }).join(" | ");
      return [time(d.at), d.bar, d.action + (d.used ? "" : " (closing)"), {text: d.latency_ms === null ? "-" : num(d.latency_ms, 3) + " ms", cls: "num"}, v || "no intent"];
    });
    var lad = $("ladder");
    if (!s.ladder.length) { lad.innerHTML = '<p class="muted">no registered model</p>'; }
    else {
      lad.innerHTML = "";
      s.ladder.forEach(function (m) {
        var h = document.createElement("p");
        h.textContent = m.model_id + ": stage " + m.stage + (m.next_stage ? " (next: " + m.next_stage + ")" : "");
        lad.appendChild(h);
        var tab = document.createElement("table");
        tab.innerHTML = "<thead><tr><th>gate</th><th>so far</th><th>rule</th><th>result</th></tr></thead><tbody></tbody>";
        m.checks.forEach(function (c) {
          var tr = tab.tBodies[0].insertRow();
          tr.insertCell().textContent = c.name;
          var v = tr.insertCell(); v.className = "num"; v.textContent = c.value === null ? "n/a" : num(c.value, 4);
          tr.insertCell().textContent = c.op + " " + c.threshold;
          var r = tr.insertCell(); r.className = c.passed ? "pass" : "fail"; r.textContent = c.passed ? "pass" : "not yet";
        });
        lad.appendChild(tab);
      });
    }
    rows("alerts-journal", s.alerts.journal, function (a) { return [time(a.at), a.kind, a.message]; });
    rows("operator-actions", s.operator_actions, function (a) {
      return [time(a.at), a.action === "refused" ? "refused " + a.requested : a.action, a.operator, a.reason];
    });
    $("halt-button").disabled = !s.controls;
    $("resume-button").disabled = !s.controls;
    document.body.setAttribute("data-journal-seq", s.journal_seq);
  }

  var pending = null;
  function ask(action) {
    pending = action;
    $("control-title").textContent = action === "halt" ? "Confirm the emergency stop" : "Confirm resume";
    $("control-effect").textContent = action === "halt"
      ? "The trader cancels every order, flattens every position and refuses every intent until an operator resumes."
      : "Trading moves one step back: EMERGENCY_STOP to PAUSED, PAUSED to RUNNING.";
    $("control-dialog").showModal();
  }
  $("halt-button").addEventListener("click", function () { ask("halt"); });
  $("resume-button").addEventListener("click", function () { ask("resume"); });
  $("control-cancel").addEventListener("click", function () { $("control-dialog").close(); pending = null; });
  $("control-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var action = pending; $("control-dialog").close();
    var out = $("control-result");
    fetch("/api/control/" + action, {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({operator: $("control-operator").value, reason: $("control-reason").value,
                            token: $("control-token").value, confirm: true})
    }).then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
      .then(function (rb) {
        if (rb[0] === 200) { out.className = "done"; out.textContent = rb[1].action + " done: " + rb[1].before + " -> " + rb[1].after; }
        else { out.className = "refused"; out.textContent = "Refused: " + rb[1].error; }
      });
    $("control-token").value = "";
  });

  var source = new EventSource("/events");
  source.addEventListener("snapshot", function (e) {
    $("stream").textContent = "live";
    render(JSON.parse(e.data));
  });
  source.onerror = function () { $("stream").textContent = "reconnecting"; };
})();
