/* thinger-http console: copy buttons, dialogs, live fragments, export progress, endpoint forms.
   Plain JS, no build step. Each behaviour hangs off a data- attribute. */
(function () {
  "use strict";

  // Copy buttons: data-copy="#selector" copies that element's value (or text).
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = "value" in source && source.tagName !== "PRE" ? source.value : source.textContent;
    copyText(text).then(function () {
      var label = button.querySelector(".btn-label") || button;
      var before = label.textContent;
      button.classList.add("copied");
      label.textContent = "Copied";
      setTimeout(function () {
        button.classList.remove("copied");
        label.textContent = before;
      }, 1500);
    });
  });

  // Dialogs: data-dialog="id" opens <dialog id="id">; data-close closes the enclosing one. A
  // dialog the server renders open (a confirmation) is made modal: <dialog open data-modal>.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog"));
      if (dialog && dialog.showModal) {
        event.preventDefault();
        dialog.showModal();
      }
      return;
    }
    var closer = event.target.closest("[data-close]");
    if (closer) {
      var parent = closer.closest("dialog");
      if (parent) parent.close();
    }
  });

  // Narrow screens: the menu button (data-nav-toggle) opens the sidebar over the page; the
  // button again, Escape or a click outside the sidebar closes it.
  function navToggle() { return document.querySelector("[data-nav-toggle]"); }
  function setNav(open) {
    var button = navToggle();
    if (!button) return;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    document.body.classList.toggle("nav-open", open);
  }
  function navOpen() { return document.body.classList.contains("nav-open"); }
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-nav-toggle]")) {
      setNav(!navOpen());
    } else if (navOpen() && !event.target.closest(".sidebar")) {
      setNav(false);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && navOpen()) {
      setNav(false);
      navToggle().focus();
    }
  });

  // Confirm before submitting: <form data-confirm="Are you sure?">.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Checkbox + selector rows: the selector is enabled only while its box is ticked.
  function syncToggles() {
    document.querySelectorAll("[data-toggles]").forEach(function (box) {
      var target = document.getElementById(box.getAttribute("data-toggles"));
      if (target) target.disabled = !box.checked;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-toggles]")) {
      syncToggles();
      var target = document.getElementById(event.target.getAttribute("data-toggles"));
      if (target && event.target.checked) target.focus();
    }
  });

  // Select or search: <select data-searchable="buckets"> gets a search box beside it. Typing
  // keeps the options that contain the text (in their label or value) and chooses the first of
  // them unless the chosen one is among them; an empty box gives every option back. Without
  // this script the select works as it is. The box is off while its select is.
  function makeSearchable(select) {
    var noun = select.getAttribute("data-searchable");
    var options = Array.prototype.slice.call(select.options);
    var choices = options.filter(function (option) { return option.value !== ""; });
    if (choices.length < 2) return;
    var box = document.createElement("div");
    box.className = "select-search";
    var input = document.createElement("input");
    input.type = "search";
    input.className = "select-filter";
    input.placeholder = "Search " + noun + "…";
    input.autocomplete = "off";
    input.setAttribute("aria-label", "Search " + noun);
    input.setAttribute("aria-controls", select.id);
    var status = document.createElement("div");
    status.className = "help select-status";
    status.setAttribute("aria-live", "polite");
    select.parentNode.insertBefore(box, select);
    box.appendChild(input);
    box.appendChild(select);
    box.parentNode.insertBefore(status, box.nextSibling);
    select.searchBox = input;

    function narrow() {
      var query = input.value.trim().toLowerCase();
      var matches = choices.filter(function (option) {
        return option.text.toLowerCase().indexOf(query) !== -1 ||
          option.value.toLowerCase().indexOf(query) !== -1;
      });
      var chosen = select.value;
      if (!query || !matches.length) {
        select.replaceChildren.apply(select, options);
        select.value = chosen;
        status.textContent = query ? "No " + noun + " match “" + input.value.trim() + "”." : "";
        return;
      }
      select.replaceChildren.apply(select, matches);
      var kept = matches.some(function (option) { return option.value === chosen; });
      select.value = kept ? chosen : matches[0].value;
      status.textContent = matches.length + " of " + choices.length + " " + noun + " match.";
      if (select.value !== chosen) select.dispatchEvent(new Event("change", { bubbles: true }));
    }
    input.addEventListener("input", narrow);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();  // the first match is chosen already; saving is the button's
      } else if (event.key === "ArrowDown") {
        event.preventDefault();
        select.focus();
      } else if (event.key === "Escape" && input.value) {
        event.preventDefault();
        input.value = "";
        narrow();
      }
    });
  }

  function syncSearchBoxes() {
    document.querySelectorAll("select[data-searchable]").forEach(function (select) {
      if (select.searchBox) select.searchBox.disabled = select.disabled;
    });
  }
  document.addEventListener("change", function (event) {
    if (!event.target.matches("[data-toggles]")) return;
    syncSearchBoxes();
    var target = document.getElementById(event.target.getAttribute("data-toggles"));
    if (target && target.searchBox && event.target.checked) target.searchBox.focus();
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select[data-searchable]").forEach(makeSearchable);
    syncToggles();
    syncSearchBoxes();
  });

  // Charts: <canvas data-chart="name" data-chart-source="json-script-id">, drawn with Chart.js.
  var charts = {};
  window.consoleCharts = charts;
  // For the pages that redraw parts of themselves (dashboard-live.js).
  window.consoleDrawChart = function (canvas) { drawChart(canvas); };
  window.consoleRefreshTimes = function (root) { refreshTimes(root); };

  var BYTE_UNITS = ["B", "KB", "MB", "GB", "TB"];
  function byteUnit(value) {
    var i = 0;
    while (Math.abs(value) >= 1024 && i < BYTE_UNITS.length - 1) { value /= 1024; i++; }
    return i;
  }
  function formatBytes(value, unit) {
    var i = unit === undefined ? byteUnit(value) : unit;
    var scaled = value / Math.pow(1024, i);
    var digits = i && Math.abs(scaled) < 10 && scaled % 1 ? 1 : 0;
    return scaled.toLocaleString([], { maximumFractionDigits: digits }) + " " + BYTE_UNITS[i];
  }
  // An axis's ticks in one unit, the one of its largest tick ("0 B, 500 B, 1,000 B", or
  // "0 KB, 1.5 KB, 3 KB"; never both).
  function byteTicks(value, index, ticks) {
    var top = Math.max.apply(null, ticks.map(function (t) { return Math.abs(t.value); }));
    return formatBytes(value, byteUnit(top));
  }

  // Draws a sentence over a chart whose data is all zeros (or missing).
  var emptyNote = {
    id: "emptyNote",
    afterDraw: function (chart) {
      var note = chart.options.plugins.emptyNote && chart.options.plugins.emptyNote.text;
      if (!note) return;
      var empty = chart.data.datasets.every(function (set) {
        return set.data.every(function (v) { return !(typeof v === "object" && v ? v.y : v); });
      });
      if (!empty) return;
      var area = chart.chartArea;
      var ctx = chart.ctx;
      ctx.save();
      ctx.fillStyle = "#64748b";
      ctx.font = "14px " + getComputedStyle(document.body).fontFamily;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(note, (area.left + area.right) / 2, (area.top + area.bottom) / 2);
      ctx.restore();
    }
  };

  var legend = { position: "bottom", labels: { usePointStyle: true, pointStyle: "circle",
    boxWidth: 8, boxHeight: 8, padding: 16 } };

  var palette = ["#2563eb", "#16a34a", "#f59e0b", "#db2777", "#7c3aed", "#0891b2", "#ea580c"];

  function trafficConfig(data) {
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Bytes received", data: data.rx, backgroundColor: "#3b82f6", borderRadius: 3,
            yAxisID: "bytes", order: 2 },
          { label: "Bytes sent", data: data.tx, backgroundColor: "#a5b4fc", borderRadius: 3,
            yAxisID: "bytes", order: 3 },
          { label: "Calls", data: data.calls, type: "line", borderColor: "#16a34a",
            backgroundColor: "#16a34a", yAxisID: "calls", tension: 0, pointRadius: 2, order: 1 }
        ]
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: legend,
          emptyNote: { text: "No calls in the last 30 days yet" },
          tooltip: { callbacks: { label: function (ctx) {
            var v = ctx.parsed.y;
            return ctx.dataset.label + ": " + (ctx.dataset.yAxisID === "bytes" ? formatBytes(v) : v);
          } } }
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          bytes: { position: "left", beginAtZero: true, grace: "10%", grid: { color: "#eef2f7" },
            ticks: { callback: byteTicks, precision: 0 }, title: { display: true, text: "Bytes" } },
          calls: { position: "right", beginAtZero: true, grace: "10%", grid: { display: false },
            ticks: { precision: 0 }, title: { display: true, text: "Calls" } }
        }
      }
    };
  }

  function seriesConfig(data) {
    // A chosen range is drawn whole. The latest records, when they are a short series, get a
    // window of two minutes around them, so that their ticks differ.
    var pad = data.bounds ? 0 : Math.max(0, (120000 - (data.span || 0)) / 2);
    var min = data.bounds ? data.bounds[0] : (pad ? data.first - pad : undefined);
    var max = data.bounds ? data.bounds[1] : (pad ? data.first + (data.span || 0) + pad : undefined);
    // On a dark background (a dashboard widget's): light text and faint grid lines.
    var ink = data.dark ? "#cbd5e1" : undefined;
    var gridColour = data.dark ? "rgba(248, 250, 252, 0.12)" : "#eef2f7";
    var border = data.dark ? { color: gridColour } : undefined;
    // Series of very different sizes (3.7 V beside 0-60 %) get an axis each: those whose
    // largest value is under a tenth of the largest of all go on a second axis, on the right.
    var tops = data.series.map(function (serie) {
      return serie.points.reduce(function (top, p) { return Math.max(top, Math.abs(p[1])); }, 0);
    });
    var largest = Math.max.apply(null, [0].concat(tops));
    var small = tops.map(function (top) { return largest > 0 && top < largest / 10; });
    var twoAxes = small.some(Boolean) && !small.every(Boolean);
    return {
      type: "line",
      data: {
        datasets: data.series.map(function (serie, i) {
          return {
            yAxisID: twoAxes && small[i] ? "y2" : "y",
            label: serie.label,
            data: serie.points.map(function (p) { return { x: p[0], y: p[1] }; }),
            borderColor: palette[i % palette.length],
            backgroundColor: palette[i % palette.length],
            tension: 0.25, pointRadius: serie.points.length > 60 ? 0 : 2, borderWidth: 2
          };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, parsing: false,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        plugins: {
          legend: { position: legend.position, labels: Object.assign({}, legend.labels, { color: ink }) },
          tooltip: { callbacks: { title: function (items) {
            if (!items.length) return "";
            // Means are drawn at the start of their interval.
            var date = new Date(items[0].parsed.x);
            var at = fullFormat.format(date) + " (" + utcText(date) + ")";
            return data.interval ? data.interval + " mean from " + at : at;
          } } }
        },
        scales: {
          x: { type: "linear", grid: { display: false }, border: border, min: min, max: max,
            title: { display: true, color: ink, text: "Time (" + (browserZone || "local") + ")" },
            afterBuildTicks: function (axis) { axis.ticks = timeTicks(axis.min, axis.max); },
            ticks: { color: ink, autoSkip: false, maxRotation: 0, callback: function (v) {
              return timeTickLabel(v, axisSpan(this));
            } } },
          y: { grid: { color: gridColour }, border: border, ticks: { color: ink } },
          y2: { display: twoAxes, position: "right", grid: { display: false }, border: border,
            ticks: { color: ink } }
        }
      }
    };
  }

  // Ticks of a time axis at round moments of the browser's clock (midnights, whole hours,
  // minutes), at most about 8, so that no two read the same.
  var STEPS = [1, 2, 5, 10, 15, 30].map(function (s) { return s * 1000; })
    .concat([1, 2, 5, 10, 15, 30].map(function (m) { return m * 60000; }))
    .concat([1, 2, 3, 6, 12].map(function (h) { return h * 3600000; }))
    .concat([1, 2, 7, 14, 30, 61, 91, 182].map(function (d) { return d * 86400000; }));
  function timeTicks(min, max) {
    if (!(max > min)) return [{ value: min }];
    var step = STEPS.filter(function (s) { return (max - min) / s <= 8; })[0] || STEPS[STEPS.length - 1];
    var start = new Date(min);
    if (step >= 86400000) {
      start.setHours(0, 0, 0, 0);  // local midnight
      if (start.getTime() < min) start.setDate(start.getDate() + 1);
      var days = Math.round(step / 86400000);
      var ticks = [];
      for (var d = new Date(start); d.getTime() <= max; d.setDate(d.getDate() + days)) {
        ticks.push({ value: d.getTime() });
      }
      return ticks;
    }
    // Below a day, round in the browser's zone: its offset moves the grid.
    var offset = start.getTimezoneOffset() * 60000;
    var first = Math.ceil((min - offset) / step) * step + offset;
    var out = [];
    for (var t = first; t <= max; t += step) out.push({ value: t });
    return out;
  }
  function axisSpan(scale) { return scale.max - scale.min; }
  function timeTickLabel(value, span) {
    var d = new Date(value);
    if (span > 2 * 86400000) return d.toLocaleDateString([], { month: "short", day: "numeric" });
    var time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      second: span > 600000 ? undefined : "2-digit" });
    // Past midnight, a tick says which day it is.
    if (span > 6 * 3600000 && d.getHours() === 0 && d.getMinutes() === 0) {
      return d.toLocaleDateString([], { month: "short", day: "numeric" });
    }
    return time;
  }

  var chartKinds = { traffic: trafficConfig, series: seriesConfig };

  function drawChart(canvas) {
    if (!window.Chart) return;
    var source = document.getElementById(canvas.getAttribute("data-chart-source"));
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var kind = canvas.getAttribute("data-chart-kind");
    var config = chartKinds[kind](data);
    config.plugins = [emptyNote];
    var chart = new window.Chart(canvas, config);
    charts[canvas.getAttribute("data-chart")] = chart;
    markTotals(chart);
  }

  function updateTraffic(name, data) {
    var chart = charts[name];
    if (!chart) return;
    chart.data.labels = data.labels;
    chart.data.datasets[0].data = data.rx;
    chart.data.datasets[1].data = data.tx;
    chart.data.datasets[2].data = data.calls;
    chart.update("none");
    markTotals(chart);
  }

  // The chart's canvas says how many calls it shows (for people using tests and tools).
  function markTotals(chart) {
    var calls = chart.data.datasets.filter(function (set) { return set.label === "Calls"; })[0];
    if (!calls) return;
    var total = calls.data.reduce(function (a, b) { return a + (b || 0); }, 0);
    chart.canvas.setAttribute("data-total-calls", String(total));
  }

  // Times: <time data-relative datetime="..."> shows "just now", "5 min ago"... for recent times.
  function relative(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 0) seconds = 0;
    if (seconds < 45) return "just now";
    var minutes = Math.round(seconds / 60);
    if (minutes < 60) return minutes + " min ago";
    var hours = Math.round(minutes / 60);
    if (hours < 24) return hours + " h ago";
    var days = Math.round(hours / 24);
    if (days < 7) return days + (days === 1 ? " day ago" : " days ago");
    return null;
  }

  // One clock: the browser's. The server shows and reads times in the zone this cookie names
  // (BrowserTimeZoneMiddleware); until it has it (the first page), times are drawn here.
  var browserZone = (Intl.DateTimeFormat().resolvedOptions() || {}).timeZone || "";
  (function keepZone() {
    if (!browserZone) return;
    var current = document.cookie.split("; ").filter(function (c) { return c.indexOf("tz=") === 0; })[0];
    if (current !== "tz=" + encodeURIComponent(browserZone)) {
      document.cookie = "tz=" + encodeURIComponent(browserZone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  })();
  var absoluteFormat = new Intl.DateTimeFormat([], { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" });
  var fullFormat = new Intl.DateTimeFormat([], { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" });
  function utcText(date) { return date.toISOString().slice(0, 19).replace("T", " ") + " UTC"; }

  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-relative]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      el.textContent = relative(date) || absoluteFormat.format(date);
      el.title = fullFormat.format(date) + " · " + utcText(date);
    });
  }

  // Live fragments: <div data-poll="url" data-poll-every="ms"> fetches {fragments: {key: html}}
  // and replaces each element with data-fragment="key"; {charts: {name: data}} updates charts.
  function poll(container) {
    var url = container.getAttribute("data-poll");
    var every = parseInt(container.getAttribute("data-poll-every") || "5000", 10);
    function tick() {
      if (document.hidden) { setTimeout(tick, every); return; }
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) return;
          Object.keys(data.fragments || {}).forEach(function (key) {
            document.querySelectorAll('[data-fragment="' + key + '"]').forEach(function (el) {
              if (el.innerHTML !== data.fragments[key]) el.innerHTML = data.fragments[key];
            });
          });
          Object.keys(data.charts || {}).forEach(function (name) { updateTraffic(name, data.charts[name]); });
          refreshTimes();
        })
        .catch(function () {})
        .then(function () { setTimeout(tick, every); });
    }
    setTimeout(tick, every);
  }

  // Export progress: <tr data-export-progress="url"> is replaced by the server's row until the
  // export is done or failed.
  function followExport(row) {
    var url = row.getAttribute("data-export-progress");
    function tick() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) return;
          var holder = document.createElement("tbody");
          holder.innerHTML = data.row;
          var fresh = holder.firstElementChild;
          row.replaceWith(fresh);
          row = fresh;
          refreshTimes(fresh);
          if (fresh.hasAttribute("data-export-progress")) setTimeout(tick, 1000);
        })
        .catch(function () { setTimeout(tick, 3000); });
    }
    setTimeout(tick, 500);
  }

  // Export and clear forms: From and To only when "A time range" is chosen.
  function syncRanges() {
    document.querySelectorAll("[data-range-scope]").forEach(function (scope) {
      var chosen = scope.querySelector("input[type=radio]:checked");
      var fields = scope.parentNode.querySelector("[data-range-fields]");
      if (fields) fields.hidden = !chosen || chosen.value !== "range";
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.closest("[data-range-scope]")) syncRanges();
  });

  // A part of a form shown for one choice: <div data-show-if="name=value"> while the form's
  // radio button (or select) called name has that value. Hidden, it is still submitted.
  function syncShowIf() {
    document.querySelectorAll("[data-show-if]").forEach(function (part) {
      var rule = part.getAttribute("data-show-if").split("=");
      var scope = part.closest("form") || document;
      var chosen = scope.querySelector('[name="' + rule[0] + '"]:checked') ||
        scope.querySelector('select[name="' + rule[0] + '"]');
      part.hidden = !chosen || chosen.value !== rule[1];
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.name) syncShowIf();
  });
  document.addEventListener("DOMContentLoaded", syncShowIf);

  // Endpoint form: only the fields of the chosen type are shown (and submitted).
  function syncEndpointType(select) {
    var chosen = select.value;
    document.querySelectorAll("[data-endpoint-type]").forEach(function (group) {
      var on = group.getAttribute("data-endpoint-type") === chosen;
      group.hidden = !on;
      group.disabled = !on;
    });
  }

  // A device's alerts: their fields only when it has alerts of its own.
  function syncAlertMode() {
    var chosen = document.querySelector("#field-mode input[type=radio]:checked");
    document.querySelectorAll("[data-alert-fields]").forEach(function (fields) {
      var own = !chosen || chosen.value === "custom";
      fields.hidden = !own;
      fields.disabled = !own;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.closest("#field-mode")) syncAlertMode();
  });

  // Sliders: <input type="range" data-range-output="id"> shows its value in that element.
  document.addEventListener("input", function (event) {
    var target = event.target.getAttribute && event.target.getAttribute("data-range-output");
    var output = target && document.getElementById(target);
    if (output) output.textContent = event.target.value;
  });

  document.addEventListener("DOMContentLoaded", function () {
    syncAlertMode();
    refreshTimes();
    setInterval(refreshTimes, 30000);
    document.querySelectorAll("dialog[open][data-modal]").forEach(function (dialog) {
      if (!dialog.showModal) return;
      dialog.close();
      dialog.showModal();
    });
    syncToggles();
    syncRanges();
    document.querySelectorAll("canvas[data-chart]").forEach(drawChart);
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("[data-export-progress]").forEach(followExport);
    var typeSelect = document.querySelector("[data-endpoint-type-select]");
    if (typeSelect) {
      syncEndpointType(typeSelect);
      typeSelect.addEventListener("change", function () { syncEndpointType(typeSelect); });
    }
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  });
})();
