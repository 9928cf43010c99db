//! The reference oracle (issue 3): what the design *promises*, independent of the model.
