"""The process kubelet: runs opted-in pods as host processes on a loopback pod IP."""
