"""What is searched, and how it is read: task specs, format converters, leaflets, chunking."""
