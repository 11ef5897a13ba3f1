/**
 * The server of the flood test, run as a process of its own by the runtime
 * under test (a flood of 10,000 connections needs more file descriptors than
 * one process may have for both ends). Listens on 127.0.0.1:$PORT; `/stats`
 * bypasses the gate and reports it with the process's memory; exits by
 * itself after two minutes.
 */
import process from "node:process";
import { throttle } from "../mod.ts";
import { serve } from "./_server.ts";

let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 10);

const gate = throttle(async () => {
  await new Promise((resolve) => setTimeout(resolve, 20));
  return new Response("served\n");
}, {
  limit: 64,
  queue: 0,
  skip: (request) => request.url.endsWith("/stats"),
});

await serve((request: Request) => {
  if (!request.url.endsWith("/stats")) return gate(request);
  return Response.json({
    ...gate.stats(),
    rss: process.memoryUsage().rss,
    peakRss,
  });
}, Number(process.env.PORT));

setTimeout(() => {
  clearInterval(sampler);
  process.exit(0);
}, 120_000);
