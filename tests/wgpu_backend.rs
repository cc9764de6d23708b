//! The encoder on burn's WGPU backend against the `flex` CPU backend, with the tiny random BERT:
//! cheap enough for any adapter, CPU-emulated ones included. Skipped, with the reason printed,
//! where no adapter exists at all.

use burn::prelude::Device;
use ranklet::fixtures::tiny_bert_files;
use ranklet::text::TextEmbedder;

#[test]
fn wgpu_matches_flex_on_the_tiny_model() {
    let gpu = match ranklet::device::init_gpu() {
        Ok(gpu) => gpu,
        Err(e) => {
            println!("SKIPPED wgpu backend test: {e}");
            return;
        }
    };
    let texts = [
        "Red shoes",
        "USB charger cable, black and white wireless",
        "x",
        "blue coffee mugs for tea lovers",
    ];
    let files = tiny_bert_files(11);
    let on_gpu = TextEmbedder::from_files(&files, &gpu.device)
        .unwrap()
        .embed(&texts)
        .unwrap();
    let on_cpu = TextEmbedder::from_files(&files, &Device::flex())
        .unwrap()
        .embed(&texts)
        .unwrap();
    let diff = on_gpu
        .iter()
        .flatten()
        .zip(on_cpu.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!(
        "wgpu ({}) vs flex, tiny model: max abs diff {diff:.2e}",
        gpu.adapter
    );
    assert!(diff < 1e-4, "max abs diff {diff}");
}
