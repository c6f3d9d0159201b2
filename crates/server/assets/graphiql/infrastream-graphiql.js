// infrastream's GraphiQL page: a credential bar above GraphiQL, and the fetcher.
//
// Loaded after the vendored React, ReactDOM and GraphiQL UMD builds (globals React, ReactDOM,
// GraphiQL), all from this server. Queries and mutations go over HTTP POST to the page's own
// path (/graphql or /graphql/<branch>), subscriptions over graphql-transport-ws to the same path.
//
// The credential (an API token, or the access token of a login) is kept in sessionStorage only:
// never in the URL, never in localStorage. Over HTTP it is sent as `X-INFRAHUB-KEY: <token>`
// (API token) or `Authorization: Bearer <jwt>` (access token); on the WebSocket the same
// header name and value go in connection_init's payload.
(function () {
  'use strict';

  var STORAGE_KEY = 'infrastream.graphiql.credential';
  var path = window.location.pathname;
  var wsUrl = (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host + path;

  function $(id) {
    return document.getElementById(id);
  }

  function looksLikeJwt(value) {
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value);
  }

  // {kind: 'token' | 'jwt', value, user?} or null.
  function loadCredential() {
    try {
      var c = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || 'null');
      if (c && typeof c.value === 'string' && c.value) return c;
    } catch (e) {
      // unreadable: treat as none
    }
    return null;
  }

  function saveCredential(c) {
    try {
      if (c) window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(c));
      else window.sessionStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      // storage refused (private mode): the credential lives for this page only
    }
  }

  function credentialHeaders(c) {
    if (!c) return {};
    if (c.kind === 'jwt') return { Authorization: 'Bearer ' + c.value };
    return { 'X-INFRAHUB-KEY': c.value };
  }

  // ---- graphql-transport-ws fetcher ------------------------------------------------------
  //
  // One WebSocket per subscription: connection_init (payload = the credential headers) ->
  // connection_ack -> subscribe -> next* -> complete | error. Returned as an async iterable,
  // as GraphiQL's fetcher contract allows; GraphiQL's "stop" calls return(), which sends
  // complete and closes the socket.
  function subscribe(params, payload) {
    var queue = [];
    var waiting = null; // resolve function of a pending next()
    var done = false;
    var id = '1';
    var ws = new WebSocket(wsUrl, 'graphql-transport-ws');

    function push(item) {
      if (done) return;
      if (item.done) done = true;
      if (waiting) {
        var w = waiting;
        waiting = null;
        w(item);
      } else {
        queue.push(item);
      }
    }
    function finish(errorPayload) {
      if (errorPayload) push({ value: errorPayload, done: false });
      push({ value: undefined, done: true });
      try {
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
      } catch (e) {
        // already closed
      }
    }

    ws.onopen = function () {
      ws.send(JSON.stringify({ type: 'connection_init', payload: payload }));
    };
    ws.onmessage = function (event) {
      var msg;
      try {
        msg = JSON.parse(event.data);
      } catch (e) {
        finish({ errors: [{ message: 'Unreadable message from the server: ' + String(event.data) }] });
        return;
      }
      switch (msg.type) {
        case 'connection_ack':
          ws.send(JSON.stringify({ id: id, type: 'subscribe', payload: params }));
          break;
        case 'ping':
          ws.send(JSON.stringify({ type: 'pong', payload: msg.payload }));
          break;
        case 'next':
          if (msg.id === id) push({ value: msg.payload, done: false });
          break;
        case 'error':
          if (msg.id === id) finish({ errors: Array.isArray(msg.payload) ? msg.payload : [msg.payload] });
          break;
        case 'complete':
          if (msg.id === id) finish(null);
          break;
        default:
          break;
      }
    };
    ws.onerror = function () {
      // onclose follows with the code and reason
    };
    ws.onclose = function (event) {
      if (done) return;
      var reason = event.reason ? ': ' + event.reason : '';
      finish({ errors: [{ message: 'WebSocket closed (' + event.code + ')' + reason, extensions: { code: event.code } }] });
    };

    var iterator = {
      next: function () {
        if (queue.length) return Promise.resolve(queue.shift());
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise(function (resolve) {
          waiting = resolve;
        });
      },
      return: function () {
        if (!done && ws.readyState === WebSocket.OPEN) {
          try {
            ws.send(JSON.stringify({ id: id, type: 'complete' }));
          } catch (e) {
            // closing anyway
          }
        }
        finish(null);
        queue = [];
        return Promise.resolve({ value: undefined, done: true });
      },
    };
    iterator[Symbol.asyncIterator] = function () {
      return iterator;
    };
    return iterator;
  }

  // Whether the operation to run is a subscription, by parsing the query with the graphql-js
  // that the GraphiQL build exposes (GraphiQL.GraphQL).
  function isSubscription(params) {
    var doc;
    try {
      doc = GraphiQL.GraphQL.parse(params.query || '');
    } catch (e) {
      return false; // the server reports the syntax error
    }
    var op = GraphiQL.GraphQL.getOperationAST(doc, params.operationName || undefined);
    return Boolean(op && op.operation === 'subscription');
  }

  // The headers of GraphiQL's headers editor are sent too (they win over the bar's).
  function makeFetcher(credential) {
    return function fetcher(params, opts) {
      var headers = Object.assign({}, credentialHeaders(credential), (opts && opts.headers) || {});
      if (isSubscription(params)) return subscribe(params, headers);
      return window
        .fetch(path, {
          method: 'POST',
          credentials: 'same-origin',
          headers: Object.assign({ 'content-type': 'application/json', accept: 'application/json' }, headers),
          body: JSON.stringify(params),
        })
        .then(function (response) {
          return response.text().then(function (text) {
            try {
              return JSON.parse(text);
            } catch (e) {
              return { errors: [{ message: 'HTTP ' + response.status + ': ' + text }] };
            }
          });
        });
    };
  }

  // ---- credential bar ----------------------------------------------------------------------

  function showStatus(text, isError) {
    var el = $('infrastream-auth-status');
    el.textContent = text;
    el.className = isError ? 'error' : '';
  }

  function describe(c) {
    if (!c) return 'No credential: requests are anonymous.';
    if (c.kind === 'jwt') return 'Logged in' + (c.user ? ' as ' + c.user : '') + ' (access token).';
    return 'Using an API token.';
  }

  var root = null;
  function render() {
    var credential = loadCredential();
    showStatus(describe(credential), false);
    $('infrastream-forget').disabled = !credential;
    if (!root) {
      var container = $('graphiql');
      container.textContent = '';
      root = ReactDOM.createRoot(container);
    }
    // A new fetcher makes GraphiQL fetch the schema again, with the new credential.
    root.render(
      React.createElement(GraphiQL, {
        fetcher: makeFetcher(credential),
        defaultEditorToolsVisibility: true,
        shouldPersistHeaders: false,
      }),
    );
  }

  $('infrastream-token-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var value = $('infrastream-token').value.trim();
    if (!value) {
      showStatus('Enter an API token (or a JWT access token) first.', true);
      return;
    }
    saveCredential({ kind: looksLikeJwt(value) ? 'jwt' : 'token', value: value });
    $('infrastream-token').value = '';
    render();
  });

  $('infrastream-login-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var username = $('infrastream-username').value;
    var password = $('infrastream-password').value;
    showStatus('Logging in…', false);
    window
      .fetch('/api/auth/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ username: username, password: password }),
      })
      .then(function (response) {
        return response.text().then(function (text) {
          var body = null;
          try {
            body = JSON.parse(text);
          } catch (e) {
            // not JSON
          }
          if (!response.ok || !body || typeof body.access_token !== 'string') {
            var msg = (body && body.errors && body.errors[0] && body.errors[0].message) || (body && body.detail) || text;
            throw new Error('Login failed (HTTP ' + response.status + '): ' + msg);
          }
          return body.access_token;
        });
      })
      .then(function (accessToken) {
        saveCredential({ kind: 'jwt', value: accessToken, user: username });
        $('infrastream-password').value = '';
        render();
      })
      .catch(function (err) {
        showStatus(String(err && err.message ? err.message : err), true);
      });
  });

  $('infrastream-forget').addEventListener('click', function () {
    saveCredential(null);
    render();
  });

  render();
})();
