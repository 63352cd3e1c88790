// The fan-out benchmark's peer: what a Node team would build — graphql-yoga
// with graphql-ws over ws, publishing from an in-memory pub/sub. The same
// `chatEvents` selection as Madoguchi's; `POST /publish` publishes one event
// to every subscriber. Prints `listening <port>` once it accepts connections.
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:http';
import { createPubSub, createSchema, createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';

// One listener per subscriber on one topic: thousands, not a leak. Node
// warns past ten on an EventTarget unless told otherwise.
const eventTarget = new EventTarget();
setMaxListeners(0, eventTarget);
const pubSub = createPubSub({ eventTarget });
let cursor = 0;

const schema = createSchema({
  typeDefs: /* GraphQL */ `
    type EndUser { displayName: String }
    type Chat { status: String! lastMessagePreview: String unreadCount: Int! endUser: EndUser! }
    type ChatEvent { cursor: String! kind: String! chat: Chat! }
    type Query { ok: Boolean! }
    type Subscription { chatEvents: ChatEvent! }
  `,
  resolvers: {
    Query: { ok: () => true },
    Subscription: {
      chatEvents: { subscribe: () => pubSub.subscribe('chatEvents'), resolve: (event) => event },
    },
  },
});

const yoga = createYoga({ schema, graphqlEndpoint: '/graphql', logging: false });

const server = createServer((request, response) => {
  if (request.method === 'POST' && request.url === '/publish') {
    cursor += 1;
    pubSub.publish('chatEvents', {
      cursor: String(cursor),
      kind: 'chat.updated',
      chat: { status: 'NEW', lastMessagePreview: 'hello', unreadCount: cursor, endUser: { displayName: 'Hanako Yamada' } },
    });
    response.writeHead(200).end('published');
    return;
  }
  yoga(request, response);
});

const sockets = new WebSocketServer({ server, path: '/graphql/ws' });
useServer(
  {
    execute: (args) => args.rootValue.execute(args),
    subscribe: (args) => args.rootValue.subscribe(args),
    onSubscribe: async (context, _id, params) => {
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        ...context,
        req: context.extra.request,
        socket: context.extra.socket,
        params,
      });
      const args = {
        schema,
        operationName: params.operationName,
        document: parse(params.query),
        variableValues: params.variables,
        contextValue: await contextFactory(),
        rootValue: { execute, subscribe },
      };
      const errors = validate(args.schema, args.document);
      return errors.length ? errors : args;
    },
  },
  sockets,
);

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
