/// Placeholder until the service model lands.
enum ServiceCorePlaceholder {}
