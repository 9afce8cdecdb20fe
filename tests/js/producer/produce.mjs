// Writes CloudEvents to Kafka as a Node.js Fachverfahren would: kafkajs with its default partitioner (the Java
// client's murmur2), an idempotent producer with acks=all, and the CloudEvents JavaScript SDK's Kafka binding
// (Kafka.binary or Kafka.structured), the Vorgang id as the partitionkey extension and so as the record key.
// Binary mode leaves event.data as the value; it is serialised with JSON.stringify, as the SDK's own examples do.
// Kafka.binary gives every attribute the event leaves unset (subject, dataschema, ...) an undefined header, which
// kafkajs 2.2.4 refuses with a TypeError (tulios/kafkajs#1500; a null value too, #1789): they are left out.
// For tests/integration/test_js_producer.py; never part of the product.
//
// Usage: node produce.mjs <bootstrap> <topic> <binary|structured>
// Stdin holds one event per line as JSON (id, source, type, time, vorgangId, data); stdout gets
// "<partition> <offset>" per event, in the order read.
import { createInterface } from "node:readline";
import { CloudEvent, Kafka as CloudEventsKafka } from "cloudevents";
import { Kafka, logLevel } from "kafkajs";

const [bootstrap, topic, mode] = process.argv.slice(2);
if (!topic || !["binary", "structured"].includes(mode)) {
  console.error("usage: node produce.mjs <bootstrap> <topic> <binary|structured>");
  process.exit(2);
}

const kafka = new Kafka({ clientId: "js-fachverfahren", brokers: [bootstrap], logLevel: logLevel.WARN });
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
try {
  const input = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of input) {
    if (!line.trim()) continue;
    const e = JSON.parse(line);
    const event = new CloudEvent({
      id: e.id,
      source: e.source,
      type: e.type,
      time: e.time,
      datacontenttype: "application/json",
      partitionkey: e.vorgangId,
      data: e.data,
    });
    const message =
      mode === "binary" ? CloudEventsKafka.binary(event) : CloudEventsKafka.structured(event);
    const value = mode === "binary" ? JSON.stringify(message.value) : message.value;
    const headers = Object.fromEntries(Object.entries(message.headers).filter(([, v]) => v != null));
    const [written] = await producer.send({
      topic,
      acks: -1,
      messages: [{ key: message.key, value, headers, timestamp: message.timestamp }],
    });
    process.stdout.write(`${written.partition} ${written.baseOffset}\n`);
  }
} finally {
  await producer.disconnect();
}
