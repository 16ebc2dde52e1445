//! Authenticated encryption of cluster datagrams with a key derived from the cluster key.
