// A dashboard's page kept up to date without a reload: one WebSocket per page
// (<div data-live-socket="path" data-live-tiles="url">, dashboards.live) says which widgets
// changed, {"widgets": [ids]}; their tiles are fetched in one request and swapped in place.
// Without the socket (it cannot open, or dropped), every tile is fetched each POLL_MS while the
// socket is retried, waiting longer each time. The [data-live-state] element says which.
(function () {
  "use strict";

  var POLL_MS = 15000;
  var RETRY_MIN_MS = 1000;
  var RETRY_MAX_MS = 60000;

  var grid = document.querySelector("[data-live-socket]");
  if (!grid) return;
  var socketPath = grid.getAttribute("data-live-socket");
  var tilesUrl = grid.getAttribute("data-live-tiles");
  var indicator = document.querySelector("[data-live-state]");
  var socket = null;
  var retryMs = RETRY_MIN_MS;
  var pollTimer = null;
  var fetching = false;
  var queued = null;  // ids asked for while a fetch runs (true: all)
  var wasOpen = false;  // a socket was open before: what changed since it closed is fetched

  function show(state) {
    if (!indicator) return;
    indicator.setAttribute("data-live-state", state);
    indicator.textContent = state === "live" ? "Live" : "Reconnecting…";
    indicator.className = "badge " + (state === "live" ? "badge-success" : "badge-warning");
  }

  function swap(html) {
    var holder = document.createElement("template");
    holder.innerHTML = html;
    Array.prototype.forEach.call(holder.content.querySelectorAll("section.tile"), function (tile) {
      var old = document.getElementById(tile.id);
      if (!old) return;
      old.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
        var chart = (window.consoleCharts || {})[canvas.getAttribute("data-chart")];
        if (chart) chart.destroy();
      });
      old.replaceWith(tile);
      if (window.consoleDrawChart) tile.querySelectorAll("canvas[data-chart]").forEach(window.consoleDrawChart);
      if (window.consoleRefreshTimes) window.consoleRefreshTimes(tile);
    });
    grid.setAttribute("data-live-updates", String(Number(grid.getAttribute("data-live-updates") || 0) + 1));
  }

  // ids: the widgets to redraw, or true for all of them.
  function refresh(ids) {
    if (fetching) {
      queued = ids === true || queued === true ? true : (queued || []).concat(ids);
      return;
    }
    fetching = true;
    // The tiles' address may carry a query of its own (the device a selector picked).
    var query = ids === true ? "" : (tilesUrl.indexOf("?") < 0 ? "?" : "&") + ids.map(function (id) { return "w=" + encodeURIComponent(id); }).join("&");
    fetch(tilesUrl + query, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) { return response.ok && !response.redirected ? response.text() : null; })
      .then(function (html) { if (html) swap(html); })
      .catch(function () {})
      .then(function () {
        fetching = false;
        if (queued) { var next = queued; queued = null; refresh(next); }
      });
  }

  function startPolling() {
    if (pollTimer === null) pollTimer = setInterval(function () { refresh(true); }, POLL_MS);
  }

  function stopPolling() {
    if (pollTimer !== null) { clearInterval(pollTimer); pollTimer = null; }
  }

  function connect() {
    if (socket) return;  // at most one stream per page
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + socketPath);
    socket.onopen = function () {
      retryMs = RETRY_MIN_MS;
      stopPolling();
      show("live");
      if (wasOpen) refresh(true);
      wasOpen = true;
    };
    socket.onmessage = function (message) {
      var data;
      try { data = JSON.parse(message.data); } catch (e) { return; }
      if (data && Array.isArray(data.widgets) && data.widgets.length) refresh(data.widgets);
    };
    socket.onclose = function () {
      socket = null;
      show("reconnecting");
      startPolling();
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    };
  }

  connect();
})();
