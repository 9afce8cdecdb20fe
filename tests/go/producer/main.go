// Command producer writes CloudEvents to Kafka as a Go Fachverfahren would: IBM's sarama with the CloudEvents Go
// SDK's Kafka binding (protocol/kafka_sarama/v2), the Vorgang id as the record key (kafka_sarama.WithMessageKey),
// an idempotent producer with acks=all, binary or structured mode. Built by scripts/tools.sh for the integration
// test tests/integration/test_go_producer.py; never part of the product.
//
// Usage: producer <bootstrap> <topic> <binary|structured> <sarama|murmur2>
//
// The last argument is the partitioner: sarama's default (FNV-1a on the key), or the Java client's murmur2 plugged
// into sarama's hash partitioner with the Java client's positive modulo (WithAbsFirst), as docs/fachverfahren.md
// tells Go teams to configure it. Stdin holds one event per line as JSON (id, source, type, time, vorgangId, data);
// stdout gets "<partition> <offset>" per event, in the order read.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
)

type line struct {
	ID        string         `json:"id"`
	Source    string         `json:"source"`
	Type      string         `json:"type"`
	Time      time.Time      `json:"time"`
	VorgangID string         `json:"vorgangId"`
	Data      map[string]any `json:"data"`
}

// recording is the SDK's sync producer, telling where each record went (the SDK's Sender drops it).
type recording struct {
	sarama.SyncProducer
	out *bufio.Writer
}

func (r recording) SendMessage(msg *sarama.ProducerMessage) (int32, int64, error) {
	partition, offset, err := r.SyncProducer.SendMessage(msg)
	if err == nil {
		fmt.Fprintf(r.out, "%d %d\n", partition, offset)
	}
	return partition, offset, err
}

// murmur2 is Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) as a hash.Hash32 for sarama.
type murmur2 struct{ data []byte }

func newMurmur2() hash.Hash32 { return &murmur2{} }

func (m *murmur2) Write(p []byte) (int, error) { m.data = append(m.data, p...); return len(p), nil }
func (m *murmur2) Reset()                      { m.data = m.data[:0] }
func (m *murmur2) Size() int                   { return 4 }
func (m *murmur2) BlockSize() int              { return 4 }
func (m *murmur2) Sum(b []byte) []byte {
	s := m.Sum32()
	return append(b, byte(s>>24), byte(s>>16), byte(s>>8), byte(s))
}

func (m *murmur2) Sum32() uint32 {
	const seed, mul, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	data := m.data
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= mul
		k ^= k >> r
		k *= mul
		h *= mul
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= mul
	}
	h ^= h >> 13
	h *= mul
	h ^= h >> 15
	return h
}

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: producer <bootstrap> <topic> <binary|structured> <sarama|murmur2>")
		os.Exit(2)
	}
	bootstrap, topic, mode, partitioner := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	config := sarama.NewConfig()
	config.ClientID = "go-fachverfahren"
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Idempotent = true
	config.Net.MaxOpenRequests = 1 // sarama's condition for an idempotent producer
	config.Producer.Return.Successes = true
	switch partitioner {
	case "sarama":
	case "murmur2":
		config.Producer.Partitioner = sarama.NewCustomPartitioner(
			sarama.WithAbsFirst(), sarama.WithCustomHashFunction(newMurmur2))
	default:
		fail(fmt.Errorf("unknown partitioner %q", partitioner))
	}
	producer, err := sarama.NewSyncProducer([]string{bootstrap}, config)
	if err != nil {
		fail(err)
	}
	out := bufio.NewWriter(os.Stdout)
	sender, err := kafka_sarama.NewSenderFromSyncProducer(topic, recording{producer, out})
	if err != nil {
		fail(err)
	}
	defer sender.Close(context.Background())
	client, err := cloudevents.NewClient(sender)
	if err != nil {
		fail(err)
	}

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		if len(in.Bytes()) == 0 {
			continue
		}
		var e line
		if err := json.Unmarshal(in.Bytes(), &e); err != nil {
			fail(err)
		}
		event := cloudevents.NewEvent()
		event.SetID(e.ID)
		event.SetSource(e.Source)
		event.SetType(e.Type)
		event.SetTime(e.Time)
		event.SetExtension("partitionkey", e.VorgangID)
		if err := event.SetData(cloudevents.ApplicationJSON, e.Data); err != nil {
			fail(err)
		}
		ctx := kafka_sarama.WithMessageKey(context.Background(), sarama.StringEncoder(e.VorgangID))
		if mode == "structured" {
			ctx = binding.WithForceStructured(ctx)
		}
		if result := client.Send(ctx, event); cloudevents.IsUndelivered(result) {
			fail(result)
		}
	}
	if err := in.Err(); err != nil {
		fail(err)
	}
	if err := out.Flush(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "producer:", err)
	os.Exit(1)
}
