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
 * <p>Usage: {@code ProduceCloudEvents <bootstrap> <topic> <binary|structured>}; stdin holds one event per line as
 * JSON ({@code id, source, type, time, vorgangId, data}); stdout gets {@code <partition> <offset>} per event, in
 * the order read.
 */
public final class ProduceCloudEvents {
    private ProduceCloudEvents() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: ProduceCloudEvents <bootstrap> <topic> <binary|structured>");
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
        ObjectMapper json = new ObjectMapper();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, CloudEvent> producer = new KafkaProducer<>(config);
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode e = json.readTree(line);
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
            producer.flush();
            for (Future<RecordMetadata> future : sent) {
                RecordMetadata written = future.get();
                System.out.println(written.partition() + " " + written.offset());
            }
        }
    }
}
