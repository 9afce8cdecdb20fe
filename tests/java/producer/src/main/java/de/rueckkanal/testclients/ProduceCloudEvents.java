package de.rueckkanal.testclients;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.cloudevents.CloudEvent;
import io.cloudevents.core.builder.CloudEventBuilder;
import io.cloudevents.core.message.Encoding;
import io.cloudevents.jackson.JsonFormat;
import io.cloudevents.kafka.CloudEventSerializer;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Writes CloudEvents to Kafka as a Java Fachverfahren would: Kafka's own producer with its default partitioner,
 * the Vorgang id as the record key, and the SDK's CloudEventSerializer in the mode given.
 *
 * <p>Usage: {@code ProduceCloudEvents <bootstrap> <topic> <binary|structured> [<transactional.id>]}; stdin holds
 * one event per line as JSON ({@code id, source, type, time, vorgangId, data}); stdout gets {@code <partition>
 * <offset>} per event, in the order read. With a transactional id the producer writes in transactions, as Spring
 * Kafka's transactional KafkaTemplate does: consecutive lines with the same {@code transaction} number form one,
 * committed, or aborted after its records were sent if its lines say {@code "abort": true}.
 */
public final class ProduceCloudEvents {
    private ProduceCloudEvents() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3 && args.length != 4) {
            System.err.println("usage: ProduceCloudEvents <bootstrap> <topic> <binary|structured> [<transactional.id>]");
            System.exit(2);
        }
        Properties config = new Properties();
        config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        config.put(ProducerConfig.ACKS_CONFIG, "all");
        config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        config.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        config.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, CloudEventSerializer.class);
        boolean structured = "structured".equals(args[2]);
        config.put(CloudEventSerializer.ENCODING_CONFIG, structured ? Encoding.STRUCTURED : Encoding.BINARY);
        if (structured) {
            config.put(CloudEventSerializer.EVENT_FORMAT_CONFIG, JsonFormat.CONTENT_TYPE);
        }
        boolean transactional = args.length == 4;
        if (transactional) {
            config.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args[3]);
        }
        ObjectMapper json = new ObjectMapper();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, CloudEvent> producer = new KafkaProducer<>(config);
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            if (transactional) {
                producer.initTransactions();
            }
            Integer transaction = null;
            boolean abort = false;
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode e = json.readTree(line);
                int number = e.path("transaction").asInt(0);
                if (transactional && (transaction == null || number != transaction)) {
                    if (transaction != null) {
                        finish(producer, abort);
                    }
                    producer.beginTransaction();
                    transaction = number;
                }
                abort = e.path("abort").asBoolean(false);
                String vorgangId = e.get("vorgangId").asText();
                CloudEvent event = CloudEventBuilder.v1()
                        .withId(e.get("id").asText())
                        .withSource(URI.create(e.get("source").asText()))
                        .withType(e.get("type").asText())
                        .withTime(OffsetDateTime.parse(e.get("time").asText()))
                        .withDataContentType("application/json")
                        .withData(json.writeValueAsBytes(e.get("data")))
                        .withExtension("partitionkey", vorgangId)
                        .build();
                sent.add(producer.send(new ProducerRecord<>(args[1], vorgangId, event)));
            }
            if (transactional && transaction != null) {
                finish(producer, abort);
            }
            producer.flush();
            for (Future<RecordMetadata> future : sent) {
                RecordMetadata written = future.get();
                System.out.println(written.partition() + " " + written.offset());
            }
        }
    }

    /** Ends the open transaction; an aborted one after its records reached the broker, so they are in the log. */
    private static void finish(KafkaProducer<String, CloudEvent> producer, boolean abort) {
        producer.flush();
        if (abort) {
            producer.abortTransaction();
        } else {
            producer.commitTransaction();
        }
    }
}
