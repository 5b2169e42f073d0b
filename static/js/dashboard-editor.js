/* Dashboards without JSON: the widget form shows the fields of the source chosen, and the
   dashboard page's "Edit layout" turns its grid into a GridStack grid (static/vendor/gridstack,
   loaded only then) where widgets are dragged and resized; "Save layout" posts the positions.
   Without this script the forms show every field and the dashboard stays read-only. */
(function () {
  "use strict";

  // --- The widget form: the fields of the chosen source (and range) only. ---

  function syncWidgetForm(form) {
    var using = JSON.parse(document.getElementById("widget-source-fields").textContent);
    var kindSelect = form.querySelector("[data-source-kind]");
    var source = kindSelect ? kindSelect.value : "";
    var mode = form.querySelector("input[name=range_mode]:checked");
    Object.keys(using).forEach(function (name) {
      var box = document.getElementById("field-" + name);
      if (!box) return;
      var shown = using[name].indexOf(source) !== -1;
      if (shown && mode && (name === "range_last" || name === "range_from" || name === "range_to")) {
        shown = (name === "range_last") === (mode.value === "last");
      }
      box.hidden = !shown;
    });
  }

  // --- The grid editor. ---

  var PHONE = "(max-width: 599px)";
  var loaded = null;

  function loadGridStack(bar) {
    if (loaded) return loaded;
    loaded = new Promise(function (resolve, reject) {
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = bar.getAttribute("data-gridstack-css");
      document.head.appendChild(css);
      var script = document.createElement("script");
      script.src = bar.getAttribute("data-gridstack-js");
      script.onload = function () { resolve(window.GridStack); };
      script.onerror = function () { reject(new Error("The grid editor did not load.")); };
      document.head.appendChild(script);
    });
    return loaded;
  }

  // A tile's place from its style: --col: x+1 / span w; --row: y+1 / span h (dashboards.tiles).
  function place(tile) {
    var col = tile.style.getPropertyValue("--col").match(/(\d+)\s*\/\s*span\s*(\d+)/);
    var row = tile.style.getPropertyValue("--row").match(/(\d+)\s*\/\s*span\s*(\d+)/);
    return { x: col[1] - 1, w: +col[2], y: row[1] - 1, h: +row[2] };
  }

  function showErrors(bar, errors) {
    var box = bar.querySelector("[data-layout-errors]");
    box.replaceChildren();
    Object.keys(errors).forEach(function (key) {
      errors[key].forEach(function (message) {
        var line = document.createElement("div");
        line.textContent = key + ": " + message;
        box.appendChild(line);
      });
    });
    box.hidden = !box.childNodes.length;
  }

  function startEditing(button, bar, grid) {
    button.disabled = true;
    loadGridStack(bar).then(function (GridStack) {
      var editing = document.createElement("div");
      editing.className = "grid-stack dash-editing";
      editing.id = "dashboard-editor-grid";
      var template = bar.getAttribute("data-widget-url");
      grid.querySelectorAll(":scope > .tile").forEach(function (tile) {
        var at = place(tile);
        var item = document.createElement("div");
        item.className = "grid-stack-item";
        item.setAttribute("gs-id", tile.getAttribute("data-widget"));
        item.setAttribute("gs-x", at.x);
        item.setAttribute("gs-y", at.y);
        item.setAttribute("gs-w", at.w);
        item.setAttribute("gs-h", at.h);
        var content = document.createElement("div");
        content.className = "grid-stack-item-content";
        var edit = document.createElement("a");
        edit.className = "btn btn-sm dash-tile-edit";
        edit.href = template.replace("__widget__", tile.getAttribute("data-widget"));
        edit.textContent = "Edit";
        edit.setAttribute("aria-label", "Edit widget " + tile.getAttribute("data-widget"));
        content.appendChild(tile);
        content.appendChild(edit);
        item.appendChild(content);
        editing.appendChild(item);
      });
      grid.hidden = true;
      grid.parentNode.insertBefore(editing, grid);
      bar.hidden = false;
      button.hidden = true;
      bar.gridStack = GridStack.init(
        {
          column: 12,
          cellHeight: 80,
          margin: 8,
          float: true,
          animate: false,
          draggable: { cancel: "a, button, input, select, textarea" },
          resizable: { handles: "se" }
        },
        editing
      );
    }).catch(function (error) {
      button.disabled = false;
      bar.hidden = false;
      showErrors(bar, { layout: [error.message] });
    });
  }

  function saveLayout(bar) {
    var layout = {};
    bar.gridStack.getGridItems().forEach(function (item) {
      var node = item.gridstackNode;
      layout[node.id] = { x: node.x, y: node.y, w: node.w, h: node.h };
    });
    var save = bar.querySelector("[data-layout-save]");
    save.disabled = true;
    fetch(bar.getAttribute("data-layout-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRFToken": bar.querySelector("input[name=csrfmiddlewaretoken]").value
      },
      body: JSON.stringify({ layout: layout })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      if (answer.ok) {
        window.location.reload();
        return;
      }
      save.disabled = false;
      showErrors(bar, answer.body.errors || { layout: ["The layout was not saved."] });
    }).catch(function () {
      save.disabled = false;
      showErrors(bar, { layout: ["The layout was not saved: the server did not answer."] });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("widget-form");
    if (form && document.getElementById("widget-source-fields")) {
      form.addEventListener("change", function (event) {
        if (event.target.matches("[data-source-kind], input[name=range_mode]")) {
          syncWidgetForm(form);
        }
      });
      syncWidgetForm(form);
    }

    var button = document.querySelector("[data-layout-edit]");
    var bar = document.getElementById("layout-editor");
    var grid = document.getElementById("dashboard-grid");
    if (!button || !bar || !grid) return;
    var phone = window.matchMedia(PHONE);
    // On a phone the widgets stack in one column: no positions to edit there.
    function offer() { button.hidden = phone.matches || bar.gridStack !== undefined; }
    offer();
    phone.addEventListener("change", offer);
    button.addEventListener("click", function () { startEditing(button, bar, grid); });
    bar.querySelector("[data-layout-save]").addEventListener("click", function () {
      saveLayout(bar);
    });
    // Cancel: the page as saved, with its widgets where they were.
    bar.querySelector("[data-layout-cancel]").addEventListener("click", function () {
      window.location.reload();
    });
  });
})();
