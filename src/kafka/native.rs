//! One librdkafka call rust-rdkafka does not offer: producing through a topic handle.
//! rust-rdkafka's `send` names the topic on every record — a C string allocated per
//! record and a topic lookup under librdkafka's lock — which a producer at its limit pays
//! for in throughput (measured here: 6–8 % of the producing thread against tansu). A
//! worker opens the topic once and sends through `rd_kafka_produce`, librdkafka's own
//! fast path (rdkafka_performance's); delivery reports, the partitioner and flushing are
//! the producer's, unchanged. These and `net::kernel`'s are plateau's only `unsafe` calls.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;

use rdkafka::bindings as rdsys;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{Producer, ProducerContext, ThreadedProducer};

/// librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks the partition.
const PARTITION_UNASSIGNED: i32 = -1;

/// A topic opened on a producer; it cannot outlive the producer.
pub struct TopicHandle<'p> {
    topic: NonNull<rdsys::rd_kafka_topic_t>,
    producer: PhantomData<&'p ()>,
}

impl<'p> TopicHandle<'p> {
    /// Opens `topic` on `producer` with the producer's default topic configuration.
    pub fn open<C: ProducerContext>(producer: &'p ThreadedProducer<C>, topic: &str) -> Result<Self, String> {
        let name = CString::new(topic).map_err(|_| format!("topic name {topic:?} contains a NUL byte"))?;
        // SAFETY: the client pointer is valid for the producer's life, which `'p` bounds;
        // a null configuration means the producer's default topic configuration.
        let handle =
            unsafe { rdsys::rd_kafka_topic_new(producer.client().native_ptr(), name.as_ptr(), std::ptr::null_mut()) };
        match NonNull::new(handle) {
            Some(topic) => Ok(TopicHandle { topic, producer: PhantomData }),
            // SAFETY: reads this thread's last librdkafka error.
            None => Err(format!(
                "cannot open topic {topic}: {:?}",
                RDKafkaErrorCode::from(unsafe { rdsys::rd_kafka_last_error() })
            )),
        }
    }

    /// Sends one record to a partition the partitioner picks; librdkafka copies `payload`
    /// and `key`. `opaque` comes back in the producer context's delivery callback as its
    /// `usize` delivery opaque.
    pub fn send(&self, payload: &[u8], key: Option<&[u8]>, opaque: usize) -> Result<(), RDKafkaErrorCode> {
        let (key_ptr, key_len) = key.map_or((std::ptr::null(), 0), |k| (k.as_ptr(), k.len()));
        // SAFETY: the topic handle is open; payload and key are valid for their lengths
        // during the call, and RD_KAFKA_MSG_F_COPY makes librdkafka copy them before it
        // returns; the opaque is a plain integer it hands back untouched.
        let status = unsafe {
            rdsys::rd_kafka_produce(
                self.topic.as_ptr(),
                PARTITION_UNASSIGNED,
                rdsys::RD_KAFKA_MSG_F_COPY,
                payload.as_ptr() as *mut std::ffi::c_void,
                payload.len(),
                key_ptr as *const std::ffi::c_void,
                key_len,
                opaque as *mut std::ffi::c_void,
            )
        };
        if status == 0 {
            Ok(())
        } else {
            // SAFETY: reads this thread's last librdkafka error, set by the failed call.
            Err(unsafe { rdsys::rd_kafka_last_error() }.into())
        }
    }
}

impl Drop for TopicHandle<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by `open` and is released once.
        unsafe { rdsys::rd_kafka_topic_destroy(self.topic.as_ptr()) }
    }
}
