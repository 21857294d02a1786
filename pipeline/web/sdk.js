/*
 * streamrec browser SDK: track events, fetch recommendations, attribute clicks.
 *
 * One dependency-free file (ES2017, no build step), served by the collector at /v1/sdk.js.
 * It defines window.streamrec; docs/javascript.md documents every call with an example.
 *
 *   streamrec.init({collector, reader, apiKey, userId, context})
 *   streamrec.track(event)              -> Promise of the collector's answer for that event
 *   streamrec.recommend(scenario, params) -> Promise of the reader's /v1/recommendations answer
 *   streamrec.render(container, response, renderItem?) -> Promise of the impressions' answers
 *   streamrec.setUser(userId)           -> Promise (a login event from the anonymous id)
 *
 * Clicks on any element inside [data-streamrec-item] inside [data-streamrec-rid] are tracked
 * by one delegated listener. Events still queued when the page is hidden go with
 * navigator.sendBeacon. Every tracked event is announced as a "streamrec:track" DOM event on
 * document (detail: {event, answer}), so pages can react to clicks without wrapping them.
 */
(function (root) {
  "use strict";

  var ANONYMOUS_ID_KEY = "streamrec.anonymous_id";
  var CLICKS_KEY = "streamrec.clicks";
  // Clicked items remembered for attribution (the newest win).
  var MAX_REMEMBERED_CLICKS = 100;
  // Below the collector's default limit (500) and sendBeacon's 64 KiB budget.
  var MAX_EVENTS_PER_REQUEST = 100;
  // The contract's cap on the items of one impression event.
  var MAX_IMPRESSION_ITEMS = 100;
  // Event types that inherit the recommendation_id of an earlier click on their item.
  var ATTRIBUTED_TYPES = { buy: true, basket: true, consume: true, rate: true };
  // recommend() parameter names -> query parameter names; others pass through as they are.
  var QUERY_NAMES = { userId: "user_id", itemIds: "item_id", itemId: "item_id" };

  var config = null;
  var currentUser = null;
  var anonymousId = null;
  var queue = [];
  var flushTimer = null;
  var listening = false;
  // Used when localStorage/sessionStorage are unavailable (privacy modes, sandboxed frames).
  var memoryStorage = {};

  function storageGet(kind, key) {
    try {
      var value = root[kind].getItem(key);
      if (value !== null) return value;
    } catch (error) {
      // Storage refused: fall back to memory.
    }
    var stored = memoryStorage[kind + ":" + key];
    return stored === undefined ? null : stored;
  }

  function storageSet(kind, key, value) {
    memoryStorage[kind + ":" + key] = value;
    try {
      root[kind].setItem(key, value);
    } catch (error) {
      // Storage refused or full: the memory copy lasts as long as the page.
    }
  }

  function hex(bytes) {
    var text = "";
    for (var i = 0; i < bytes.length; i++) text += (bytes[i] + 0x100).toString(16).slice(1);
    return text;
  }

  /** A random UUID: crypto.randomUUID when the browser has it, else a version-4 UUID built
   * from crypto.getRandomValues (or Math.random as a last resort). */
  function uuid() {
    var cryptoApi = root.crypto;
    if (cryptoApi && typeof cryptoApi.randomUUID === "function") return cryptoApi.randomUUID();
    var bytes = new Uint8Array(16);
    if (cryptoApi && typeof cryptoApi.getRandomValues === "function") {
      cryptoApi.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var h = hex(bytes);
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  function loadAnonymousId() {
    var id = storageGet("localStorage", ANONYMOUS_ID_KEY);
    if (!id) {
      id = "anon-" + uuid();
      storageSet("localStorage", ANONYMOUS_ID_KEY, id);
    }
    return id;
  }

  function requireInit(what) {
    if (!config) throw new Error("streamrec." + what + ": call streamrec.init first");
  }

  function baseUrl(value) {
    return String(value || "").replace(/\/+$/, "");
  }

  function keyHeaders(extra) {
    var headers = Object.assign({}, extra);
    if (config.apiKey) headers["X-API-Key"] = config.apiKey;
    return headers;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (error) {
      return null;
    }
  }

  /** An Error for a non-2xx answer, carrying status, error code and body. */
  function httpError(response, body) {
    var detail = body && body.detail ? body.detail : "HTTP " + response.status;
    var error = new Error(detail);
    error.status = response.status;
    error.code = body && body.error ? body.error : null;
    error.body = body;
    return error;
  }

  // --- attribution: item -> recommendation_id of the last click, per browser tab -------------

  function rememberedClicks() {
    try {
      var pairs = JSON.parse(storageGet("sessionStorage", CLICKS_KEY) || "[]");
      return Array.isArray(pairs) ? pairs : [];
    } catch (error) {
      return [];
    }
  }

  function rememberClick(itemId, recommendationId) {
    // A list of [item, recommendation] pairs, oldest first (object keys would reorder ids
    // that look like numbers).
    var pairs = rememberedClicks().filter(function (pair) {
      return pair[0] !== itemId;
    });
    pairs.push([itemId, recommendationId]);
    storageSet("sessionStorage", CLICKS_KEY, JSON.stringify(pairs.slice(-MAX_REMEMBERED_CLICKS)));
  }

  function recommendationOf(itemId) {
    var pairs = rememberedClicks();
    for (var i = pairs.length - 1; i >= 0; i--) {
      if (pairs[i][0] === itemId) return pairs[i][1];
    }
    return null;
  }

  // --- sending ----------------------------------------------------------------------------------

  /** The collector's answer narrowed to one event: the same shape, with that event only. */
  function answerFor(answer, index) {
    var found = null;
    for (var i = 0; i < answer.results.length; i++) {
      if (answer.results[i].index === index) found = answer.results[i];
    }
    var result = Object.assign({}, found || { status: "rejected", reason: "no result" });
    result.index = 0;
    var accepted = result.status === "accepted" ? 1 : 0;
    return { accepted: accepted, rejected: 1 - accepted, results: [result] };
  }

  async function send(batch) {
    var body = JSON.stringify(
      batch.map(function (pending) {
        return pending.event;
      })
    );
    var response;
    var answer;
    try {
      response = await fetch(config.collector + "/v1/events", {
        method: "POST",
        headers: keyHeaders({ "Content-Type": "application/json" }),
        body: body,
        credentials: "omit",
      });
      answer = await readJson(response);
    } catch (error) {
      batch.forEach(function (pending) {
        pending.reject(error);
      });
      return;
    }
    if (answer && Array.isArray(answer.results)) {
      // 200, or 400 when every event was rejected: each event gets its own verdict.
      batch.forEach(function (pending, index) {
        pending.resolve(answerFor(answer, index));
      });
      return;
    }
    var failure = httpError(response, answer);
    batch.forEach(function (pending) {
      pending.reject(failure);
    });
  }

  function takeBatches() {
    if (flushTimer !== null) {
      clearTimeout(flushTimer);
      flushTimer = null;
    }
    var batches = [];
    while (queue.length) batches.push(queue.splice(0, MAX_EVENTS_PER_REQUEST));
    return batches;
  }

  /** Send every queued event now with fetch (the default, a few milliseconds after track). */
  function flush() {
    takeBatches().forEach(send);
  }

  function beaconUrl() {
    var url = config.collector + "/v1/events";
    return config.apiKey ? url + "?api_key=" + encodeURIComponent(config.apiKey) : url;
  }

  /** Send every queued event with navigator.sendBeacon: it survives the page going away.
   * text/plain needs no CORS preflight; the collector parses the body whatever its type.
   * The answer cannot be read, so those events resolve with {beacon: true}. */
  function flushWithBeacon() {
    takeBatches().forEach(function (batch) {
      var body = JSON.stringify(
        batch.map(function (pending) {
          return pending.event;
        })
      );
      var queued = false;
      var nav = root.navigator;
      if (nav && typeof nav.sendBeacon === "function") {
        try {
          queued = nav.sendBeacon(beaconUrl(), new Blob([body], { type: "text/plain" }));
        } catch (error) {
          queued = false;
        }
      }
      if (!queued) {
        send(batch);
        return;
      }
      batch.forEach(function (pending) {
        pending.resolve({ beacon: true });
      });
    });
  }

  function announce(event, answer) {
    if (typeof document === "undefined" || typeof CustomEvent !== "function") return;
    document.dispatchEvent(
      new CustomEvent("streamrec:track", { detail: { event: event, answer: answer } })
    );
  }

  // --- the public calls ---------------------------------------------------------------------

  /** Track one event. Fills event_id, timestamp and user_id when missing, and the
   * recommendation_id of a conversion (buy, basket, consume, rate) of an item the visitor
   * reached by clicking a recommendation in this tab. Events are sent in batches right after
   * the current task; the promise gives the collector's answer for this event
   * ({accepted, rejected, results: [{index: 0, event_id, status} | {..., reason}]}), or
   * {beacon: true} when the page went away first. Rejects on HTTP errors (401, 413, 503:
   * error.status, error.code) and network failures. */
  function track(event) {
    try {
      requireInit("track");
      if (!event || typeof event !== "object" || Array.isArray(event)) {
        throw new TypeError("streamrec.track: the event must be an object");
      }
    } catch (error) {
      return Promise.reject(error);
    }
    var filled = Object.assign({}, event);
    if (filled.event_id == null) filled.event_id = uuid();
    if (filled.timestamp == null) filled.timestamp = Date.now();
    if (filled.user_id == null) filled.user_id = currentUser;
    // The page context (init's context) under the event's own keys.
    if (config.context) filled.context = Object.assign({}, config.context, filled.context);
    if (filled.recommendation_id == null && ATTRIBUTED_TYPES[filled.type] && filled.item_id) {
      var recommendationId = recommendationOf(String(filled.item_id));
      if (recommendationId) filled.recommendation_id = recommendationId;
    }
    var answer = new Promise(function (resolve, reject) {
      queue.push({ event: filled, resolve: resolve, reject: reject });
    });
    if (flushTimer === null) flushTimer = setTimeout(flush, 0);
    announce(filled, answer);
    return answer;
  }

  /** Fetch a scenario's recommendations from the reader. params: userId (default: the
   * current user; null for none), itemIds (context items), n, exclude (array), fields
   * (array or comma string), context (an object over init's context: the request context
   * scenarios re-rank in), and any parameter the scenario declares. */
  async function recommend(scenario, params) {
    requireInit("recommend");
    if (typeof scenario !== "string" || !scenario) {
      throw new TypeError("streamrec.recommend: the scenario name is required");
    }
    var options = Object.assign({}, params);
    var query = new URLSearchParams();
    query.append("scenario", scenario);
    var userId = options.userId === undefined ? currentUser : options.userId;
    delete options.userId;
    if (userId != null) query.append("user_id", String(userId));
    var context = Object.assign({}, config.context, options.context);
    delete options.context;
    if (Object.keys(context).length) query.append("context", JSON.stringify(context));
    Object.keys(options).forEach(function (name) {
      var value = options[name];
      if (value == null) return;
      var key = QUERY_NAMES[name] || name;
      if (name === "fields" && Array.isArray(value)) {
        query.append(key, value.join(","));
      } else if (Array.isArray(value)) {
        value.forEach(function (entry) {
          query.append(key, String(entry));
        });
      } else {
        query.append(key, String(value));
      }
    });
    var response = await fetch(config.reader + "/v1/recommendations?" + query.toString(), {
      headers: keyHeaders({}),
      credentials: "omit",
    });
    var body = await readJson(response);
    if (!response.ok || !body) throw httpError(response, body);
    return body;
  }

  function defaultItem(item) {
    var button = document.createElement("button");
    button.type = "button";
    button.setAttribute("data-streamrec-item", String(item.item_id));
    var title = item.item && item.item.title;
    // textContent: catalog data never becomes markup.
    button.textContent = title ? String(title) : String(item.item_id);
    var entry = document.createElement("li");
    entry.appendChild(button);
    return entry;
  }

  /** Render a recommendation response into container (an element or a selector), tag it for
   * click attribution (each item with its own recommendation_id, which names its stage) and
   * send one impression event per stage for the items shown. renderItem(item, index,
   * response) may return a DOM node per item (or null to skip it); without it, a list of
   * buttons. Returns a promise of {accepted, rejected, impressions} summed over the
   * impression events (null when nothing was shown). */
  function render(container, response, renderItem) {
    requireInit("render");
    var element = typeof container === "string" ? document.querySelector(container) : container;
    if (!element) throw new Error("streamrec.render: no element " + String(container));
    var items = response && Array.isArray(response.items) ? response.items : [];
    var recommendationId = response && response.recommendation_id;
    if (recommendationId) element.setAttribute("data-streamrec-rid", recommendationId);
    else element.removeAttribute("data-streamrec-rid");
    while (element.firstChild) element.removeChild(element.firstChild);
    var parent = element;
    if (!renderItem) {
      parent = document.createElement("ul");
      parent.className = "streamrec-items";
      element.appendChild(parent);
    }
    var shown = [];
    items.forEach(function (item, index) {
      var node = renderItem ? renderItem(item, index, response) : defaultItem(item);
      if (node == null) return;
      if (typeof node === "string") {
        var text = document.createElement("span");
        text.textContent = node;
        node = text;
      }
      var tagged = node.hasAttribute && node.hasAttribute("data-streamrec-item");
      if (!tagged && !(node.querySelector && node.querySelector("[data-streamrec-item]"))) {
        node.setAttribute("data-streamrec-item", String(item.item_id));
      }
      // Each item's own id names the stage that placed it: clicks and impressions sent with
      // it are credited to that stage, not only to the scenario.
      var own = item.recommendation_id || recommendationId;
      if (item.recommendation_id && node.setAttribute) {
        node.setAttribute("data-streamrec-rid", String(item.recommendation_id));
      }
      parent.appendChild(node);
      if (own) shown.push([String(own), String(item.item_id)]);
    });
    if (!shown.length) return Promise.resolve(null);
    // One impression event per recommendation id (per stage), in the order first shown.
    var groups = {};
    var order = [];
    shown.forEach(function (pair) {
      if (!groups[pair[0]]) {
        groups[pair[0]] = [];
        order.push(pair[0]);
      }
      groups[pair[0]].push(pair[1]);
    });
    return Promise.all(
      order.map(function (rid) {
        return track({
          type: "impression",
          items: groups[rid].slice(0, MAX_IMPRESSION_ITEMS),
          recommendation_id: rid,
        });
      })
    ).then(function (answers) {
      var total = { accepted: 0, rejected: 0, impressions: order.length };
      answers.forEach(function (answer) {
        total.accepted += (answer && answer.accepted) || 0;
        total.rejected += (answer && answer.rejected) || 0;
      });
      return total;
    });
  }

  /** Switch to a known user (after login). From the anonymous id, a login event tells the
   * agents to merge the anonymous history into the user's; between two known users nothing
   * is merged. setUser(null) goes back to the anonymous id (logout). */
  function setUser(userId) {
    try {
      requireInit("setUser");
    } catch (error) {
      return Promise.reject(error);
    }
    var previous = currentUser;
    currentUser = userId == null ? anonymousId : String(userId);
    if (userId == null || previous === currentUser || previous !== anonymousId) {
      return Promise.resolve(null);
    }
    return track({ type: "login", user_id: currentUser, previous_user_id: previous });
  }

  function onClick(domEvent) {
    var target = domEvent.target;
    if (!target || typeof target.closest !== "function") return;
    var itemElement = target.closest("[data-streamrec-item]");
    if (!itemElement) return;
    var list = itemElement.closest("[data-streamrec-rid]");
    if (!list) return;
    var itemId = itemElement.getAttribute("data-streamrec-item");
    var recommendationId = list.getAttribute("data-streamrec-rid");
    if (!itemId || !recommendationId) return;
    rememberClick(itemId, recommendationId);
    track({ type: "click", item_id: itemId, recommendation_id: recommendationId }).catch(
      function () {
        // Reported through the "streamrec:track" event; nothing to do here.
      }
    );
    // A link navigates away before a fetch could finish: send the click as a beacon now.
    if (target.closest("a[href]")) flushWithBeacon();
  }

  function listen() {
    if (listening || typeof document === "undefined") return;
    listening = true;
    // Capture phase: clicks count even when the page stops their propagation.
    document.addEventListener("click", onClick, true);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") flushWithBeacon();
    });
    root.addEventListener("pagehide", flushWithBeacon);
  }

  /** Configure the SDK. collector and reader are base URLs (default: this page's origin);
   * apiKey goes in the X-API-Key header; userId is the logged-in user, else an anonymous id
   * kept in localStorage. May be called again (another user, another key). */
  function init(options) {
    var given = options || {};
    config = {
      collector: baseUrl(given.collector),
      reader: baseUrl(given.reader),
      apiKey: given.apiKey ? String(given.apiKey) : null,
      // Sent with every event and recommendation request (e.g. {device: "mobile"}).
      context: given.context && typeof given.context === "object" ? given.context : null,
    };
    anonymousId = loadAnonymousId();
    currentUser = given.userId == null ? anonymousId : String(given.userId);
    listen();
    return api;
  }

  var api = {
    version: "1",
    init: init,
    track: track,
    recommend: recommend,
    render: render,
    setUser: setUser,
    flush: flush,
    userId: function () {
      return currentUser;
    },
  };
  root.streamrec = api;
})(typeof window !== "undefined" ? window : this);
