// confwatch: the little the pages need that htmx cannot do.
// 1. Relative times (<time data-relative>) stay right while the page is open.
// 2. When the server cannot be reached, or a live refresh has had no answer for twice
//    its interval (a hung server), a notice says so and since when, and relative times
//    stop ticking (they would look live); htmx keeps polling (every request has a
//    timeout: the htmx-config meta tag in base.html), and the first answer clears it.
// 3. The tab's icon shows when the page reports a problem (failing, not found or stale
//    conferences in the overview's counts; a failing or stale conference on its page).
// 4. "/" focuses the search field, where the page has one.
(function () {
  "use strict";

  // The twin of conferences/text.py relative_text: the same words for the same
  // seconds (tests/test_text.py feeds both one table of cases).
  function relativeText(seconds, suffix) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 5) return suffix ? "just now" : "a moment";
    let amount;
    if (seconds < 60) amount = seconds + " s";
    else if (seconds < 3600) amount = Math.floor(seconds / 60) + " min";
    else if (seconds < 86400 * 2) amount = Math.floor(seconds / 3600) + " h";
    else amount = Math.floor(seconds / 86400) + " d";
    return amount + suffix;
  }

  // The twin of text.py's local_text(value, date=False): "19:23:31 CET", always with
  // the zone (the page's, <body data-time-zone>, else the browser's). The zone's name is
  // the page's abbreviation for the time's UTC offset (<body data-zone-abbreviations>,
  // text.py's zone_abbreviations): Intl knows few ("GMT+1" where text.py says "CET").
  function clockText(date, zone, abbreviations) {
    const options = {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false, timeZoneName: "short",
    };
    let parts;
    try {
      parts = new Intl.DateTimeFormat("en-US", zone ? Object.assign({ timeZone: zone }, options) : options)
        .formatToParts(date);
    } catch (error) {
      parts = new Intl.DateTimeFormat("en-US", options).formatToParts(date);
      abbreviations = null;
    }
    const part = function (type) {
      const found = parts.find(function (p) { return p.type === type; });
      return found ? found.value : "";
    };
    const hour = part("hour") === "24" ? "00" : part("hour");
    const wall = Date.UTC(+part("year"), +part("month") - 1, +part("day"), +hour, +part("minute"), +part("second"));
    const offset = Math.round((wall - Math.floor(date.getTime() / 1000) * 1000) / 60000);
    const name = (zone && abbreviations && abbreviations[offset]) || part("timeZoneName");
    return hour + ":" + part("minute") + ":" + part("second") + " " + name;
  }

  // The page's zone abbreviations by UTC offset in minutes ({} when it gives none).
  function pageAbbreviations() {
    try {
      return JSON.parse(document.body.dataset.zoneAbbreviations || "{}");
    } catch (error) {
      return {};
    }
  }

  // What tests (and the console) can call: the same rules as conferences/text.py.
  window.confwatchText = { relativeText: relativeText, clockText: clockText };

  function refreshTimes() {
    if (trouble !== null) return; // frozen while the server does not answer
    const now = Date.now();
    document.querySelectorAll("time[data-relative]").forEach(function (element) {
      const at = Date.parse(element.getAttribute("datetime"));
      if (!Number.isNaN(at)) {
        element.textContent = relativeText((now - at) / 1000, element.dataset.relative);
      }
    });
  }

  // The connection notice. trouble: null, or {kind, since}: "disconnected" (the server
  // cannot be reached, or fails with a 5xx) or "silent" (no answer: a hung server).
  let trouble = null;
  let lastAnswer = Date.now(); // the page itself is an answer
  let watchingSince = Date.now(); // when the tab last became visible

  const TROUBLE_TEXT = {
    disconnected: [
      "Disconnected since ",
      ": the server cannot be reached, so what this page shows may be out of date. Retrying…",
    ],
    silent: [
      "Not responding since ",
      ": the server has not answered this page's refreshes, so what it shows is as of " +
        "then and relative times have stopped. Retrying…",
    ],
  };

  function showTrouble(kind, since) {
    const notice = document.getElementById("connection-status");
    if (!notice) return;
    if (trouble !== null && (trouble.kind === kind || kind === "silent")) return;
    trouble = { kind: kind, since: trouble ? trouble.since : since };
    const words = TROUBLE_TEXT[kind];
    notice.textContent =
      words[0] + clockText(trouble.since, document.body.dataset.timeZone, pageAbbreviations()) + words[1];
    notice.dataset.trouble = kind;
    notice.hidden = false;
    document.body.classList.add("disconnected");
  }

  function showDisconnected() {
    showTrouble("disconnected", new Date());
  }

  function showConnected() {
    lastAnswer = Date.now();
    const notice = document.getElementById("connection-status");
    if (!notice || trouble === null) return;
    trouble = null;
    notice.hidden = true;
    notice.textContent = "";
    delete notice.dataset.trouble;
    document.body.classList.remove("disconnected");
    refreshTimes();
  }

  // How often the page's live parts refresh (the shortest, in seconds; null: none):
  // hx-trigger="every Ns", or data-hidden-every="M" while the tab is hidden.
  function liveInterval() {
    let shortest = null;
    document.querySelectorAll("[hx-trigger][data-hidden-every]").forEach(function (element) {
      const match = /every\s+(\d+(?:\.\d+)?)s/.exec(element.getAttribute("hx-trigger"));
      if (!match) return;
      let seconds = Number(match[1]);
      if (document.visibilityState !== "visible") {
        seconds = Math.max(seconds, Number(element.dataset.hiddenEvery) || 0);
      }
      if (shortest === null || seconds < shortest) shortest = seconds;
    });
    return shortest;
  }

  // A hung server: no answer for twice the refresh interval. (A hidden tab's timers are
  // throttled by the browser: it is judged only while visible.)
  function watchAnswers() {
    const interval = liveInterval();
    if (interval === null || document.visibilityState !== "visible") return;
    const quietFor = Date.now() - Math.max(lastAnswer, watchingSince);
    if (quietFor > 2 * interval * 1000) showTrouble("silent", new Date(lastAnswer));
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") watchingSince = Date.now();
  });
  document.addEventListener("htmx:sendError", showDisconnected);
  document.addEventListener("htmx:timeout", function () {
    showTrouble("silent", new Date(lastAnswer));
  });
  document.addEventListener("htmx:responseError", function (event) {
    // 5xx: the server (or the proxy in front of it) is down or failing. A 4xx is an
    // answer, so the page is connected.
    if (event.detail.xhr.status >= 500) showDisconnected();
    else showConnected();
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) showConnected();
  });

  // A tab nobody looks at refreshes less often: an element with data-hidden-every="N"
  // sends its live update at most every N seconds while the page is hidden. (An htmx
  // trigger filter would do it, but filters need eval, which the CSP forbids.)
  var lastLive = {};
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    var every = elt.getAttribute && elt.getAttribute("data-hidden-every");
    if (!every || !elt.id) return;
    var now = Date.now();
    if (document.visibilityState !== "visible" && now - (lastLive[elt.id] || 0) < every * 1000) {
      event.preventDefault();
      return;
    }
    lastLive[elt.id] = now;
  });

  // A button with data-confirm asks first (no inline handlers: the CSP forbids them).
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
  var PROBLEMS =
    ".count-failing.nonzero, .count-not_found.nonzero, .count-stale.nonzero, " +
    "#status-card .stale, #status-card .poll:not(.poll-ok):not(.poll-pending)";

  function refreshFavicon() {
    var icon = document.getElementById("favicon");
    if (!icon) return;
    if (!icon.dataset.calmHref) icon.dataset.calmHref = icon.getAttribute("href");
    var wanted = document.querySelector(PROBLEMS) ? icon.dataset.attentionHref : icon.dataset.calmHref;
    if (icon.getAttribute("href") !== wanted) icon.setAttribute("href", wanted);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) return;
    var search = document.querySelector("[role=search] input[type=search], [role=search] input[name=q]");
    if (!search) return;
    event.preventDefault();
    search.focus();
    search.select();
  });

  function refreshPage() {
    refreshTimes();
    refreshFavicon();
  }
  document.addEventListener("DOMContentLoaded", refreshPage);
  document.addEventListener("htmx:afterSettle", refreshPage);
  setInterval(refreshTimes, 5000);
  setInterval(watchAnswers, 1000);
})();
