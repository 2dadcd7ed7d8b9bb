// Two users chat through a Parley node: sign up, sign in, send a message, receive it
// as a push, and see the read receipt. Run: node client-js/examples/chat.js ws://127.0.0.1:8080/
import { ParleyClient, ParleyError } from "@parley/client";

const url = process.argv[2] ?? "ws://127.0.0.1:8080/";
const suffix = Date.now().toString(36); // new user ids on every run

/** A client signed in as `userId` (registered first if need be). @param {string} userId */
async function signUp(userId) {
  const client = new ParleyClient(url);
  await client.connect();
  try {
    await client.register(userId, "correct-horse", { nickname: userId });
  } catch (error) {
    if (!(error instanceof ParleyError && error.errorName === "USER_EXISTS")) throw error;
  }
  await client.login(userId, "correct-horse"); // platform 5, the web
  return client;
}

const alice = await signUp(`alice-${suffix}`);
const bob = await signUp(`bob-${suffix}`);

const pushed = bob.nextEvent("message"); // pushes are events, by their `t`
const sent = await alice.sendText("hello bob", { toUserId: `bob-${suffix}` });
const { message } = await pushed;
const text = message.content.type === 101 ? message.content.text : "";
console.log(`bob received seq ${message.seq} of ${sent.conversation_id}: ${text}`);

const receipt = alice.nextEvent("read_receipt");
await bob.markRead(message.conversation_id, message.seq);
console.log(`alice sees bob has read up to seq ${(await receipt).has_read_seq}`);

alice.close();
bob.close();
