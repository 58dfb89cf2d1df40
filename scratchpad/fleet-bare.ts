import { launchBare } from "../bench/bare.js"
const t0 = performance.now()
await Promise.all(Array.from({ length: 100 }, async () => {
  const bare = await launchBare()
  await bare.execute("query-status")
  await bare.quit()
}))
console.log("bare wall", (performance.now() - t0).toFixed(0), "rss", (process.memoryUsage().rss / 1e6).toFixed(1))
