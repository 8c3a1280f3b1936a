// Prints a fresh VAPID key pair for Web Push (docs/notifications.md), ready for
// `wrangler secret put VAPID_PUBLIC_KEY` / `VAPID_PRIVATE_KEY`, or for `.dev.vars` to try Web Push locally.
import { generateVapidKeys } from "../shared/notifications/web-push.ts";

const keys = await generateVapidKeys();
console.log(`VAPID_PUBLIC_KEY=${keys.publicKey}`);
console.log(`VAPID_PRIVATE_KEY=${keys.privateKey}`);
console.log("VAPID_SUBJECT=mailto:ops@example.com");
