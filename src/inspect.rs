//! What a log holds, in one view (as `kcat -L` gives for Kafka).
