// Madoguchi's GraphiQL page: queries and mutations go to /graphql over
// HTTP, subscriptions to /graphql/ws (graphql-transport-ws). The token that
// `login` returns is put into the Authorization header shown in the Headers
// tab, and the same header is sent in `connection_init` for subscriptions.
// Served with `script-src 'self'`: nothing here may be inline or remote.
(function () {
  'use strict';

  var TOKEN_KEY = 'madoguchi.graphiql.token';
  var PLACEHOLDER = 'Bearer <the token from login>';

  var DEFAULT_QUERY = [
    '# Madoguchi GraphQL API.',
    '#',
    '# 1. Log in: put in your email and password and press the run button.',
    '#    The returned token is placed in the Authorization header (see the',
    '#    Headers tab below) and sent with every later operation.',
    '# 2. Then, for example:',
    '#      query { me { id name email role } }',
    '#      subscription { chatEvents { cursor kind } }',
    '#    Subscriptions run over /graphql/ws with the same header.',
    '',
    'mutation Login {',
    '  login(input: {email: "admin@example.com", password: "your password"}) {',
    '    token',
    '    expiresAt',
    '    agent { name role }',
    '  }',
    '}',
    '',
  ].join('\n');

  function storedToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY);
    } catch (_) {
      return null;
    }
  }

  function storeToken(token) {
    try {
      if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
      else window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // Storage may be switched off; the token then lives only in the editor.
    }
  }

  function headersText(token) {
    return JSON.stringify({ Authorization: token ? 'Bearer ' + token : PLACEHOLDER }, null, 2);
  }

  // The Authorization header as the Headers tab has it, unless it is still
  // the placeholder.
  function authorizationFrom(headers) {
    var value = null;
    Object.keys(headers || {}).forEach(function (name) {
      if (name.toLowerCase() === 'authorization') value = String(headers[name]);
    });
    if (!value || value === PLACEHOLDER) return null;
    return value;
  }

  // Whether the operation to run is a subscription: the named operation's
  // keyword, or the first operation's when no name is given.
  function isSubscription(params) {
    var source = String(params.query || '')
      .replace(/"""[\s\S]*?"""/g, '""')
      .replace(/"(?:[^"\\\n]|\\.)*"/g, '""')
      .replace(/#[^\n\r]*/g, '');
    var operation = /\b(query|mutation|subscription)\b\s*([_A-Za-z][_0-9A-Za-z]*)?/g;
    var match;
    while ((match = operation.exec(source)) !== null) {
      if (!params.operationName || match[2] === params.operationName) return match[1] === 'subscription';
    }
    return false;
  }

  function webSocketUrl() {
    var scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + window.location.host + '/graphql/ws';
  }

  function subscribe(params, authorization) {
    return {
      subscribe: function (observer) {
        var client = window.graphqlWs.createClient({
          url: webSocketUrl(),
          lazy: true,
          retryAttempts: 0,
          connectionParams: authorization ? { authorization: authorization } : {},
        });
        var finished = false;
        var dispose = client.subscribe(params, {
          next: function (value) {
            observer.next(value);
          },
          error: function (error) {
            if (finished) return;
            finished = true;
            // A refused or closed connection arrives as a CloseEvent.
            var message =
              error && typeof error.code === 'number'
                ? 'connection closed: ' + error.code + (error.reason ? ' ' + error.reason : '')
                : Array.isArray(error)
                  ? error.map(function (e) { return e.message; }).join('; ')
                  : String((error && error.message) || error);
            observer.next({ errors: [{ message: message }] });
            observer.complete();
            client.dispose();
          },
          complete: function () {
            finished = true;
            observer.complete();
            client.dispose();
          },
        });
        return {
          unsubscribe: function () {
            finished = true;
            dispose();
            client.dispose();
          },
        };
      },
    };
  }

  function Page() {
    var e = React.createElement;
    var state = React.useState(storedToken());
    var token = state[0];
    var setToken = state[1];

    React.useEffect(function () {
      var status = document.getElementById('session');
      var text = document.getElementById('session-state');
      var logout = document.getElementById('logout');
      status.className = token ? 'signed-in' : '';
      text.textContent = token
        ? 'Logged in: the Authorization header (Headers tab) carries your session token.'
        : 'Not logged in: run the login mutation below; its token goes into the Authorization header.';
      logout.hidden = !token;
      logout.onclick = function () {
        storeToken(null);
        setToken(null);
      };
    }, [token]);

    var fetcher = React.useCallback(function (params, options) {
      var headers = (options && options.headers) || {};
      var authorization = authorizationFrom(headers);
      if (isSubscription(params)) return subscribe(params, authorization);
      var sent = { 'Content-Type': 'application/json', Accept: 'application/json' };
      Object.keys(headers).forEach(function (name) {
        if (name.toLowerCase() !== 'authorization') sent[name] = headers[name];
      });
      if (authorization) sent.Authorization = authorization;
      return window
        .fetch('/graphql', { method: 'POST', headers: sent, body: JSON.stringify(params), credentials: 'omit' })
        .then(function (response) {
          return response.json();
        })
        .then(function (result) {
          var login = result && result.data && result.data.login;
          if (login && typeof login.token === 'string') {
            storeToken(login.token);
            setToken(login.token);
          }
          return result;
        });
    }, []);

    return e(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: DEFAULT_QUERY,
      headers: headersText(token),
      defaultEditorToolsVisibility: 'headers',
      shouldPersistHeaders: false,
    });
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(Page));
})();
