//! Neural-network building blocks on plain `f32` buffers, with fast multi-threaded CPU kernels,
//! and the networks built from them (the dlib face ResNet).
